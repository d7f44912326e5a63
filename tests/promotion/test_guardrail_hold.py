"""A winner that costs revenue is held, not promoted: the round, the decision log, the results
API and the admin page say why; the default guardrails arrive with the shop's first order."""

import random

import pytest

from tests.admin.helpers import PASSWORD, log_in
from tests.helpers import event, send_events
from tests.promotion.helpers import visit
from tests.rewards.helpers import post_order
from widget_server.extensions import db
from widget_server.models import Campaign
from widget_server.services.platform.admin_users import create_admin
from widget_server.services.promotion import results
from widget_server.services.promotion.evaluation import run_round


def winner_that_costs_revenue(client, site, campaign_id, control, treatment, visitors, seed):
    """B completes far more often (25% against 10%), but a quarter as many of its visitors
    order (10% against 40%)."""
    rng = random.Random(seed)
    served = visit(client, site, campaign_id, [f"h-{seed}-{i:05d}" for i in range(visitors)])
    events = []
    for key, variant in served.items():
        events.append(event("impression", key, campaign_id, variant))
        if rng.random() < (0.25 if variant == treatment else 0.10):
            events.append(event("complete", key, campaign_id, variant))
    for start in range(0, len(events), 100):
        assert send_events(client, site, events[start : start + 100]).status_code == 202
    for number, (key, variant) in enumerate(served.items()):
        if rng.random() < (0.10 if variant == treatment else 0.40):
            order = {"order_id": f"h-{number}", "visitor_id": key, "total": 50.0 + number % 40,
                     "currency": "EUR"}  # fmt: skip
            assert post_order(client, site, order).status_code == 201


def test_a_round_holds_a_winner_that_loses_revenue_and_logs_the_hold_once(client, admin, ab_test):
    site, campaign, (a, b) = ab_test()  # no guardrail named: the defaults, once orders come
    cid = campaign["id"]
    winner_that_costs_revenue(client, site, cid, a, b, visitors=1000, seed=61)

    report = run_round()

    assert (report.promoted, report.held) == ([], [cid])
    db.session.expire_all()
    assert db.session.get(Campaign, cid).promoted_variant_id is None
    body = admin.get(f"/api/v1/admin/campaigns/{cid}/results").json
    assert body["decision"]["action"] == "hold" and body["decision"]["held_variant_id"] == b
    assert "is worse than the control on revenue per visitor" in body["decision"]["reason"]
    harmed = {g["metric"] for g in body["guardrails"] if g["harmed"]}
    assert harmed == {"revenue", "order"}
    (hold,) = admin.get(f"/api/v1/admin/campaigns/{cid}/decisions").json["decisions"]
    assert (hold["action"], hold["winner_variant_id"], hold["automatic"]) == ("hold", b, True)
    assert hold["reason"] == body["decision"]["reason"]
    assert hold["snapshot"]["guardrails"]

    assert run_round().held == []  # still held: logged once
    assert len(admin.get(f"/api/v1/admin/campaigns/{cid}/decisions").json["decisions"]) == 1

    create_admin("owner", PASSWORD)
    assert log_in(client).status_code == 302
    html = client.get(f"/admin/campaigns/{cid}/results").get_data(as_text=True)
    assert "Promotion held by a guardrail" in html and "decision-hold" in html
    assert "Guardrail metrics" in html and "Revenue per visitor" in html
    assert html.count(">Harmed</span>") == 2
    # Every visitor came alike (no device, no referrer): one stratum, nothing to adjust.
    assert "Adjusted for who the visitors were" not in html
    assert "The raw figures decide, not adjusted for who the visitors were: every stratum" in html


def test_default_guardrails_need_a_shop_that_reports_orders(client, admin, ab_test):
    site, campaign, (a, b) = ab_test()
    stored = db.session.get(Campaign, campaign["id"])
    assert results.guardrails_of(stored, reports_orders=False) == []
    assert [g["metric"] for g in results.guardrails_of(stored, True)] == ["revenue", "order"]
    revenue_test = db.session.get(Campaign, ab_test(metric="revenue")[1]["id"])
    assert [g["metric"] for g in results.guardrails_of(revenue_test, True)] == ["order"]
    named_none = db.session.get(Campaign, ab_test(guardrails=[])[1]["id"])
    assert results.guardrails_of(named_none, True) == []

    assert results.sites_reporting_orders([site["id"]]) == set()
    visit(client, site, campaign["id"], ["buyer-0001"])
    order = {"order_id": "first", "visitor_id": "buyer-0001", "total": 10.0, "currency": "EUR"}
    assert post_order(client, site, order).status_code == 201
    assert results.sites_reporting_orders([site["id"]]) == {site["id"]}


@pytest.mark.parametrize(
    ("guardrails", "field"),
    [
        ([{"metric": "bounce"}], "ab.guardrails.0.metric"),
        ([{"metric": "revenue", "max_drop": 1.5}], "ab.guardrails.0.max_drop"),
        ([{"max_drop": 0.1}], "ab.guardrails.0.metric"),
        ([{"metric": "order"}, {"metric": "order"}], "ab.guardrails"),
        ("revenue", "ab.guardrails"),
    ],
)
def test_bad_guardrails_are_refused_naming_the_field(admin, make_site, guardrails, field):
    site = make_site()
    body = {"name": "C", "kind": "survey", "ab": {"guardrails": guardrails}}
    response = admin.post(f"/api/v1/admin/sites/{site['id']}/campaigns", json=body)
    assert response.status_code == 400, response.json
    assert field in response.json["error"]["fields"], response.json["error"]["fields"]


def test_guardrails_and_the_adjustment_are_stored_as_sent(admin, make_site):
    site = make_site()
    ab = {"guardrails": [{"metric": "close", "max_drop": 0.05}], "adjustment": "none"}
    body = {"name": "C", "kind": "survey", "ab": ab}
    created = admin.post(f"/api/v1/admin/sites/{site['id']}/campaigns", json=body)
    assert created.status_code == 201, created.json
    assert created.json["ab"]["guardrails"] == [{"metric": "close", "max_drop": 0.05}]
    assert created.json["ab"]["adjustment"] == "none"
    refused = admin.post(
        f"/api/v1/admin/sites/{site['id']}/campaigns",
        json={"name": "D", "kind": "survey", "ab": {"adjustment": "cuped"}},
    )
    assert "ab.adjustment" in refused.json["error"]["fields"]
