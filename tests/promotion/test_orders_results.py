"""Revenue per visitor and coupon redemption through the real APIs (decide, events, spin, signed
orders) equal a direct count from the raw events, orders and codes."""

import random
from collections import defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.api.helpers import event, post_public, send_events
from tests.promotion.conftest import QUICK_AB
from tests.promotion.helpers import visit
from tests.rewards.conftest import pool_slice, slice_, wheel_content
from tests.rewards.helpers import post_order
from widget_server.extensions import db
from widget_server.models import Assignment, CouponCode, Event, Order, Visitor
from widget_server.models.types import utcnow
from widget_server.services.promotion import metrics


@pytest.fixture
def wheel_test(admin, make_site, make_campaign):
    """A running two-variant wheel judged on revenue; every spin wins a code from one pool."""
    site = make_site()
    pool = admin.post(f"/api/v1/admin/sites/{site['id']}/coupon-pools", json={"name": "P"}).json
    made = admin.post(
        f"/api/v1/admin/coupon-pools/{pool['id']}/generate", json={"count": 200, "prefix": "R-"}
    )
    assert made.status_code == 201, made.json
    content = wheel_content([pool_slice("10% off", 1, pool["id"]), slice_("No luck", 0)])
    campaign = make_campaign(
        site,
        kind="wheel",
        name="Wheel",
        variants=[
            {"name": "A", "is_control": True, "content": content},
            {"name": "B", "content": content},
        ],
        ab={**QUICK_AB, "metric": "revenue", "method": "fixed"},
    )
    return site, campaign


def direct_count(campaign_id):
    """Per variant: exposed visitors, their revenue (orders from the first impression on) and
    whether they redeemed a code this campaign gave them, from raw rows alone."""
    assigned = dict(
        db.session.execute(
            select(Assignment.visitor_id, Assignment.variant_id).where(
                Assignment.campaign_id == campaign_id,
                Assignment.variant_id.is_not(None),
                Assignment.sampled_out.is_(False),
            )
        ).all()
    )
    first_seen = {}
    for visitor_id, at in db.session.execute(
        select(Event.visitor_id, Event.occurred_at).where(
            Event.campaign_id == campaign_id, Event.type == "impression"
        )
    ):
        first_seen[visitor_id] = min(at, first_seen.get(visitor_id, at))
    codes = dict(
        db.session.execute(
            select(CouponCode.id, CouponCode.visitor_id).where(
                CouponCode.campaign_id == campaign_id
            )
        ).all()
    )
    revenue, redeemed = defaultdict(float), set()
    for visitor_id, total, at, coupon_id in db.session.execute(
        select(Order.visitor_id, Order.total, Order.ordered_at, Order.coupon_id)
    ):
        if visitor_id not in first_seen or at < first_seen[visitor_id]:
            continue
        revenue[visitor_id] += float(total)
        if coupon_id in codes and codes[coupon_id] == visitor_id:
            redeemed.add(visitor_id)
    counts = defaultdict(lambda: {"visitors": 0, "buyers": 0, "revenue": [], "redeemed": 0})
    for visitor_id in first_seen.keys() & assigned.keys():
        cell = counts[assigned[visitor_id]]
        cell["visitors"] += 1
        cell["buyers"] += revenue[visitor_id] > 0
        cell["revenue"].append(revenue[visitor_id])
        cell["redeemed"] += visitor_id in redeemed
    return counts


def test_revenue_and_redemptions_equal_a_direct_count(client, admin, wheel_test):
    site, campaign = wheel_test
    cid = campaign["id"]
    rng = random.Random(41)
    served = visit(client, site, cid, [f"visitor-o-{i:04d}" for i in range(120)])
    exposed = [v for v in served if rng.random() < 0.85]  # the others never see the popup
    impressions = [event("impression", v, cid, served[v]) for v in exposed]
    for start in range(0, len(impressions), 100):  # a batch holds 100 events at most
        assert send_events(client, site, impressions[start : start + 100]).status_code == 202
    won = {}
    for visitor_key in exposed:
        if rng.random() < 0.6:
            body = {"visitor_id": visitor_key, "campaign_id": cid}
            spun = post_public(client, site, "spin", body)
            assert spun.status_code == 200, spun.json
            won[visitor_key] = spun.json["code"]
    order_no = 0
    for visitor_key in served:
        for n in range(rng.choice([0, 0, 1, 1, 2])):
            order_no += 1
            order = {
                "order_id": f"o-{order_no}",
                "visitor_id": visitor_key,
                "total": round(rng.lognormvariate(3.5, 0.6), 2),
                "currency": "EUR",
            }
            if n == 0 and visitor_key in won and rng.random() < 0.5:
                order["coupon_code"] = won[visitor_key]
            if rng.random() < 0.1:  # bought before the popup showed: counts nowhere
                order["created_at"] = (utcnow() - timedelta(days=2)).isoformat()
            response = post_order(client, site, order)
            assert response.status_code == 201, response.json

    body = admin.get(f"/api/v1/admin/campaigns/{cid}/results").json

    expected = direct_count(cid)
    assert body["metric"] == "revenue"
    for variant in body["variants"]:
        cell = expected[variant["variant_id"]]
        assert variant["visitors"] == cell["visitors"]
        assert variant["conversions"] == cell["buyers"]
        assert variant["value_sum"] == pytest.approx(sum(cell["revenue"]))
        assert variant["value_sum_squares"] == pytest.approx(sum(x * x for x in cell["revenue"]))
        assert variant["rate"] == pytest.approx(sum(cell["revenue"]) / cell["visitors"])
    redemptions = metrics.campaign_figures(cid, "coupon_redemption")
    got = {v: (f.visitors, f.conversions) for v, f in redemptions.items()}
    assert got == {v: (c["visitors"], c["redeemed"]) for v, c in expected.items()}
    assert sum(c["redeemed"] for c in expected.values()) >= 5  # the test exercised redemptions
    unexposed = set(served) - set(exposed)
    keys = set(db.session.scalars(select(Visitor.visitor_key).where(Visitor.order_count > 0)))
    assert unexposed & keys  # visitors who bought without an impression were in the traffic
