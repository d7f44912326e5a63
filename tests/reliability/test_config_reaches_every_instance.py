"""A change made through one server instance reaches another's decide within ``CONFIG_CHECK_S``.

The counterpart, with real servers, of ``tests/campaigns/test_site_config_versions.py``: separate
gunicorn processes on one PostgreSQL database, each with its own in-process cache of the site's
configuration. Each keeps its copy for a minute here, so only the version check can bring a change
made through another instance; a third instance that never checks shows that nothing else did.
PostgreSQL only: several instances on one database is the deployment this is for.
"""

import time
from types import SimpleNamespace

import pytest

from tests.conftest import _postgres_database
from tests.helpers import (
    ORIGIN,
    AdminClient,
    configured_app,
    create_campaign,
    create_site,
    migrate,
    survey_variants,
)
from tests.reliability.servers import Answer, Gunicorn, post_public, request
from widget_server.extensions import db
from widget_server.services.platform.tokens import create_token

CHECK_S = 0.5
#: Far longer than a test: no copy expires while one runs.
CACHE_TTL_S = 60


def _cached(check_s: float) -> dict:
    return {
        "FUNNELCAKE_CONFIG_CACHE_TTL_S": str(CACHE_TTL_S),
        "FUNNELCAKE_CONFIG_CHECK_S": str(check_s),
    }


@pytest.fixture(scope="module")
def instances(request):
    """Three gunicorn instances of one worker each on one PostgreSQL database: ``first`` takes
    the admin calls, ``other`` checks its copy's version every ``CHECK_S``, ``stale`` never does;
    ``url`` and an admin ``token``. One worker each, so the worker that answers an instance's next
    request is the one whose cache the test filled."""
    url = _postgres_database(request)
    migrate(url)
    app = configured_app(url)
    with app.app_context():
        token = create_token("reliability")
        db.session.remove()
        db.engine.dispose()
    with (
        Gunicorn(url, workers=1, env=_cached(CHECK_S)) as first,
        Gunicorn(url, workers=1, env=_cached(CHECK_S)) as other,
        Gunicorn(url, workers=1, env=_cached(3600.0)) as stale,
    ):
        yield SimpleNamespace(url=url, token=token, first=first, other=other, stale=stale)


def _survey(url: str, variants=None) -> tuple[dict, dict]:
    """A new site and a running survey on it (of ``variants``), as the admin API answers them."""
    app = configured_app(url)
    with app.app_context():
        admin = AdminClient(app.test_client(), create_token("reliability-seed"))
        site = create_site(admin, origins=[ORIGIN])
        campaign = create_campaign(admin, site, variants=variants)
        db.session.remove()
        db.engine.dispose()
    return site, campaign


def _admin_post(server: Gunicorn, token: str, path: str, body=None) -> Answer:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return request(server.base_url, "POST", path, body or {}, headers)


def _offered(server: Gunicorn, site: dict, visitor_id: str) -> list[tuple[int, int]]:
    """``(campaign_id, variant_id)`` of what the instance's decide offers the visitor."""
    body = {"visitor_id": visitor_id, "url": f"{ORIGIN}/"}
    answer = post_public(server.base_url, site["site_key"], "decide", body, origin=ORIGIN)
    assert answer.status == 200, (answer.status, answer.body[:300])
    return [(o["campaign_id"], o["variant_id"]) for o in answer.json()["campaigns"]]


def _after_one_check_interval() -> None:
    """Wait out the check interval: the next request of a worker compares versions.

    Asserting on what the first request after the interval sees, rather than timing a poll,
    keeps the test exact on a shared machine slowed fivefold."""
    time.sleep(CHECK_S * 1.05)


def test_a_promotion_through_one_instance_reaches_another_within_the_check(instances):
    site, campaign = _survey(instances.url, variants=survey_variants("AB", weights=[1, 1]))
    a, b = (v["id"] for v in campaign["variants"])
    # A visitor shown B by the other instance, whose copy is now cached (and the stale one's).
    shown_b = next(
        visitor
        for visitor in (f"visitor-{n:04d}" for n in range(200))
        if _offered(instances.other, site, visitor) == [(campaign["id"], b)]
    )
    assert _offered(instances.stale, site, shown_b) == [(campaign["id"], b)]

    promoted = _admin_post(
        instances.first,
        instances.token,
        f"/api/v1/admin/campaigns/{campaign['id']}/promote",
        {"variant_id": a},
    )
    assert promoted.status == 201, promoted.body[:300]
    returned = time.monotonic()
    _after_one_check_interval()
    seen = _offered(instances.other, site, shown_b)
    after_s = time.monotonic() - returned
    assert seen == [(campaign["id"], a)], f"still {seen} {after_s:.2f} s after the promotion"
    assert _offered(instances.stale, site, shown_b) == [(campaign["id"], b)]  # no check: stale


def test_a_pause_through_one_instance_reaches_another_within_the_check(instances):
    site, campaign = _survey(instances.url)
    offered = [(campaign["id"], campaign["variants"][0]["id"])]
    assert _offered(instances.other, site, "visitor-0001") == offered
    assert _offered(instances.stale, site, "visitor-0001") == offered

    paused = _admin_post(
        instances.first, instances.token, f"/api/v1/admin/campaigns/{campaign['id']}/pause"
    )
    assert paused.status == 200, paused.body[:300]
    returned = time.monotonic()
    _after_one_check_interval()
    seen = _offered(instances.other, site, "visitor-0001")
    after_s = time.monotonic() - returned
    assert seen == [], f"still offered {seen} {after_s:.2f} s after the pause"
    assert _offered(instances.stale, site, "visitor-0001") == offered  # no check: stale
