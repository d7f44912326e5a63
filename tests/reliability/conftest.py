"""Fixtures of the reliability tests: the service under gunicorn, as production runs it."""

from types import SimpleNamespace

import pytest

from tests.helpers import ORIGIN
from tests.reliability.servers import Gunicorn, Worker, seed_site


@pytest.fixture(scope="module")
def served(module_database_url):
    """A site (allowing ``tests.helpers.ORIGIN``) and a running survey on the module's database,
    served by gunicorn (2 workers) with a ``funnelcake worker`` beside it, as in production;
    ``url``, ``site``, ``campaign``, ``server`` and ``worker``."""
    url = module_database_url
    site, campaign = seed_site(url, origins=[ORIGIN])
    with Gunicorn(url, workers=2) as server:
        worker = Worker(url)
        try:
            yield SimpleNamespace(
                url=url, site=site, campaign=campaign, server=server, worker=worker
            )
        finally:
            worker.stop()
