"""The promotion rules that count days, tested on aged campaigns: ``started_at`` is moved back in
the database, as if the test had run that long, and the round runs on the real clock.

``min_running_days`` holds back a clear winner until the test has run that long;
``max_duration_days`` stops a test without a winner once it has run that long, not before.
"""

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import survey_content
from tests.promotion.helpers import simulate, visit
from widget_server.extensions import db
from widget_server.models import Campaign, Decision
from widget_server.services.promotion.evaluation import run_round

#: README, "Guardrails": the test has run ``min_running_days`` (7) by default.
DOCUMENTED_MIN_RUNNING_DAYS = 7


def decisions(campaign_id):
    return db.session.scalars(select(Decision).where(Decision.campaign_id == campaign_id)).all()


def age(campaign_id: int, days: float) -> None:
    """Move the campaign's start ``days`` further into the past."""
    stored = db.session.get(Campaign, campaign_id)
    stored.started_at -= timedelta(days=days)
    db.session.commit()


@pytest.fixture
def default_ab_test(make_site, make_campaign):
    """A running two-variant survey with the A/B settings a new campaign gets by default."""
    site = make_site()
    variants = [
        {"name": name, "is_control": name == "A", "content": survey_content()} for name in "AB"
    ]
    campaign = make_campaign(site, variants=variants)
    return site, campaign, [v["id"] for v in campaign["variants"]]


def test_clear_winner_waits_for_min_running_days_then_default_round_promotes_it(
    client, admin, default_ab_test
):
    site, campaign, (a, b) = default_ab_test
    min_days = DOCUMENTED_MIN_RUNNING_DAYS
    simulate(client, site, campaign["id"], {a: 0.05, b: 0.60}, visitors=1100, seed=21)

    fresh = run_round()
    assert (fresh.evaluated, fresh.promoted) == (1, [])
    age(campaign["id"], min_days - 0.1)
    almost = run_round()
    assert (almost.evaluated, almost.promoted) == (1, [])
    assert decisions(campaign["id"]) == []
    results = admin.get(f"/api/v1/admin/campaigns/{campaign['id']}/results").json
    assert results["decision"]["action"] == "continue"
    assert "must run" in results["decision"]["reason"]

    age(campaign["id"], 0.2)
    assert run_round().promoted == [campaign["id"]]

    [decision] = decisions(campaign["id"])
    assert (decision.action, decision.winner_variant_id, decision.automatic) == ("promote", b, True)
    served = visit(client, site, campaign["id"], [f"visitor-late-{i:03d}" for i in range(20)])
    assert set(served.values()) == {b}


@pytest.mark.parametrize("visitors", [300, 0], ids=["seen", "never-seen"])
def test_test_without_winner_runs_until_max_duration_days_and_stops_then(
    client, admin, ab_test, visitors
):
    site, campaign, (a, b) = ab_test(max_duration_days=5)
    if visitors:
        simulate(client, site, campaign["id"], {a: 0.10, b: 0.10}, visitors=visitors, seed=13)

    age(campaign["id"], 4.9)
    assert run_round().stopped == []
    assert admin.get(f"/api/v1/admin/campaigns/{campaign['id']}").json["status"] == "running"

    age(campaign["id"], 0.2)
    assert run_round().stopped == [campaign["id"]]

    [decision] = decisions(campaign["id"])
    assert (decision.action, decision.winner_variant_id) == ("stop", a)
    assert "maximum duration" in decision.reason
    shown = admin.get(f"/api/v1/admin/campaigns/{campaign['id']}").json
    assert (shown["status"], shown["promoted_variant_id"]) == ("completed", None)
