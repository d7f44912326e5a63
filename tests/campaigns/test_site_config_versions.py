"""Changes reach every web worker within ``CONFIG_CHECK_S``, not only when its copy expires.

Two apps on one database stand for two workers (or hosts): each caches the site's configuration
for a minute here, so only the version check can bring a change made through the other one.
"""

import time

from sqlalchemy import select

from tests.helpers import decide, survey_variants
from widget_server.extensions import db
from widget_server.models import Campaign, Site

CHECK_S = 0.2


def _worker(make_app, check_s=CHECK_S):
    return make_app(CONFIG_CACHE_TTL_S=60.0, CONFIG_CHECK_S=check_s).test_client()


def _offered(client, site, visitor="visitor-0001") -> list[tuple[int, int]]:
    answer = decide(client, site, visitor)
    assert answer.status_code == 200, answer.json
    return [(o["campaign_id"], o["variant_id"]) for o in answer.json["campaigns"]]


def _after_one_check_interval() -> None:
    """Wait out the check interval: the next request of each worker compares versions.

    Asserting on what the first request after the interval sees, rather than timing a poll,
    keeps the test exact on a machine slowed fivefold (a timed bound of 1 s once failed at
    1.02 s there)."""
    time.sleep(CHECK_S * 1.05)


def test_a_campaign_paused_elsewhere_stops_within_the_check(
    make_app, admin, make_site, make_campaign
):
    site = make_site()
    campaign = make_campaign(site)
    other = _worker(make_app)
    stale = _worker(make_app, check_s=3600.0)  # no checks: only its minute-long copy
    assert _offered(other, site) and _offered(stale, site)

    paused = admin.post(f"/api/v1/admin/campaigns/{campaign['id']}/pause")
    assert paused.status_code == 200, paused.json
    _after_one_check_interval()
    assert _offered(other, site) == []
    assert _offered(stale, site)  # the check, not an expiry, brought it


def test_a_promotion_reaches_another_worker_within_the_check(
    make_app, admin, make_site, make_campaign
):
    site = make_site()
    campaign = make_campaign(site, variants=survey_variants("AB", weights=[1, 1]))
    a, b = (v["id"] for v in campaign["variants"])
    other = _worker(make_app)
    # A visitor shown B, seen by the other worker (its copy now cached).
    shown_b = next(
        f"visitor-{n:04d}"
        for n in range(200)
        if _offered(other, site, f"visitor-{n:04d}") == [(campaign["id"], b)]
    )
    promoted = admin.post(
        f"/api/v1/admin/campaigns/{campaign['id']}/promote", json={"variant_id": a}
    )
    assert promoted.status_code == 201, promoted.json
    _after_one_check_interval()
    assert _offered(other, site, shown_b) == [(campaign["id"], a)]


def test_the_version_rises_with_a_committed_change_only(app, make_site, make_campaign):
    site = make_site()
    campaign_id = make_campaign(site)["id"]
    version = lambda: db.session.scalar(select(Site.config_version).where(Site.id == site["id"]))  # noqa: E731
    before = version()
    db.session.get(Campaign, campaign_id).priority = 7
    db.session.flush()
    db.session.rollback()
    assert version() == before
    db.session.get(Campaign, campaign_id).priority = 7
    db.session.commit()
    assert version() > before
