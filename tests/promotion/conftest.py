"""Fixtures for the promotion tests: a two-variant campaign with the guardrails opened up."""

import pytest
from sqlalchemy import update

from tests.helpers import survey_variants
from widget_server.extensions import db
from widget_server.models import Campaign

#: Guardrails low enough for a test to reach a decision with a few thousand visitors.
QUICK_AB = {
    "metric": "completion",
    "method": "sequential",
    "min_running_days": 0,
    "min_visitors_per_variant": 200,
    "max_duration_days": 30,
    # A small planned maximum, so the spending boundary lets a real 10% -> 15% lift through early.
    "max_visitors_per_variant": 2000,
}


@pytest.fixture
def ab_test(make_site, make_campaign):
    """Make a running A/B campaign (A control, B) with ``QUICK_AB`` settings plus overrides."""

    def make(n_variants=2, **ab):
        site = make_site()
        variants = survey_variants("ABCD"[:n_variants])
        campaign = make_campaign(site, variants=variants, ab={**QUICK_AB, **ab})
        # A fixed hashing seed (a new campaign draws a random one), so that simulated traffic
        # splits the same way on every run: a test of "promotes a clear winner" or "an A/A test
        # promotes nothing" must not fail on the few percent of draws that go the other way.
        db.session.execute(
            update(Campaign).where(Campaign.id == campaign["id"]).values(seed="promotion-tests")
        )
        db.session.commit()
        ids = [v["id"] for v in campaign["variants"]]
        return site, campaign, ids

    return make


@pytest.fixture(autouse=True)
def _unpromote_before_cleanup(app):
    """campaigns.promoted_variant_id points at variants, which the shared cleanup deletes first."""
    yield
    from sqlalchemy import update

    from widget_server.extensions import db
    from widget_server.models import Campaign

    db.session.rollback()
    db.session.execute(update(Campaign).values(promoted_variant_id=None))
    db.session.commit()


@pytest.fixture(autouse=True)
def site_configuration_kept(request):
    """Decide and events keep each site's configuration, as in production, and check its
    version at every request (``CONFIG_CHECK_S = 0``): a change through the ORM or the admin
    API is seen at the next request, and thousands of simulated requests do not reload it each
    time."""
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    app.config.update(CONFIG_CACHE_TTL_S=3600.0, CONFIG_CHECK_S=0.0)
