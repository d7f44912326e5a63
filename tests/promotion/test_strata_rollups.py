"""What the rollups keep per stratum, and the guardrails' order and close figures: decide stores
what it knew before the popup, every exposure and conversion counts under it, and the strata add
up to the variants' totals without any event read back."""

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.helpers import decide, event, send_events
from tests.rewards.helpers import post_order
from widget_server.extensions import db
from widget_server.models import Assignment, StratumMetric, VariantMetric, Visitor
from widget_server.models.types import utcnow
from widget_server.services.campaigns.strata import components, stratum_of, traffic_source
from widget_server.services.campaigns.targeting import PageContext
from widget_server.services.promotion import metrics


@pytest.mark.parametrize(
    ("url", "referrer", "source"),
    [
        ("https://shop.example/?utm_source=news", "https://www.google.com/", "campaign"),
        ("https://shop.example/p?gclid=abc", None, "campaign"),
        ("https://shop.example/", None, "direct"),
        ("https://shop.example/", "https://www.google.co.uk/search?q=x", "search"),
        ("https://shop.example/", "https://duckduckgo.com/", "search"),
        ("https://shop.example/b", "https://shop.example/a", "internal"),
        ("https://shop.example/", "https://blog.example.org/post", "referral"),
        ("https://shop.example/", "not a url", "direct"),
    ],
)
def test_traffic_source_from_the_query_and_the_referrer(url, referrer, source):
    assert traffic_source(url, referrer) == source


@pytest.mark.parametrize(
    ("is_new", "orders", "visitor"),
    [(True, 0, "new"), (False, 0, "returning"), (True, 1, "customer"), (False, 5, "repeat")],
)
def test_a_stratum_says_who_the_visitor_was_before_the_popup(is_new, orders, visitor):
    page = PageContext("https://shop.example/", "tablet", is_new, orders, "emotional")
    key = stratum_of(page, None)
    assert key == f"{visitor}|tablet|direct|emotional"
    assert components(key) == (visitor, "tablet", "direct", "emotional")


def test_a_visitor_assigned_before_strata_reads_as_unknown():
    assert components(None) == components("") == ("unknown",) * 4


def test_decide_stores_the_stratum_with_a_new_assignment(client, ab_test):
    site, campaign, _ = ab_test()
    referrer = "https://www.bing.com/search?q=shoes"
    assert (
        decide(client, site, "visitor-strat", device="mobile", referrer=referrer).status_code == 200
    )
    stratum = db.session.scalar(select(Assignment.stratum))
    visitor, device, source, _ = components(stratum)
    assert (visitor, device, source) == ("new", "mobile", "search")
    # Later pages never move it: the stratum is the one known at assignment.
    assert decide(client, site, "visitor-strat", device="desktop").status_code == 200
    assert db.session.scalar(select(Assignment.stratum)) == stratum


def send(client, site, campaign_id, plan):
    """``plan``: visitor key -> (device, events after the impression, order totals after it)."""
    served = {}
    for key, (device, _, _) in plan.items():
        answer = decide(client, site, key, device=device).json
        served[key] = next(
            c["variant_id"] for c in answer["campaigns"] if c["campaign_id"] == campaign_id
        )
    events = []
    for key, (_, kinds, _) in plan.items():
        events += [event(kind, key, campaign_id, served[key]) for kind in ("impression", *kinds)]
    assert send_events(client, site, events).status_code == 202
    for n, (key, (_, _, totals)) in enumerate(plan.items()):
        for i, total in enumerate(totals):
            order = {"order_id": f"{key}-{i}", "visitor_id": key, "total": total,
                     "currency": "EUR"}  # fmt: skip
            assert post_order(client, site, order).status_code == 201
        if n == 0:  # an order dated before the impression counts nowhere
            early = (utcnow() - timedelta(days=1)).isoformat()
            order = {"order_id": f"{key}-early", "visitor_id": key, "total": 99.0,
                     "currency": "EUR", "created_at": early}  # fmt: skip
            assert post_order(client, site, order).status_code == 201
    return served


def test_order_and_close_count_each_visitor_once_and_strata_add_up(client, ab_test):
    site, campaign, _ = ab_test()
    cid = campaign["id"]
    plan = {
        "visitor-s-0001": ("mobile", ["close", "close"], [20.0, 30.0]),
        "visitor-s-0002": ("mobile", ["complete"], [15.5]),
        "visitor-s-0003": ("desktop", ["close"], []),
        "visitor-s-0004": ("desktop", [], [40.0, 10.0, 5.0]),
        "visitor-s-0005": ("tablet", ["complete", "close"], []),
    }
    served = send(client, site, cid, plan)

    totals = metrics.figures([cid])[cid]
    expected = {"order": Counter(), "close": Counter(), "revenue": Counter()}
    for key, (_, kinds, orders) in plan.items():
        expected["order"][served[key]] += bool(orders)
        expected["close"][served[key]] += "close" in kinds
        expected["revenue"][served[key]] += sum(orders)
    for metric in ("order", "close"):
        got = {v: f.conversions for v, f in totals[metric].items() if f.conversions}
        assert got == {v: n for v, n in expected[metric].items() if n}, metric
    assert {v: f.value_sum for v, f in totals["revenue"].items()} == pytest.approx(
        {v: expected["revenue"][v] for v in totals["revenue"]}
    )
    # Every stratified figure: the strata add up to the daily rollups' totals.
    daily = db.session.execute(
        select(VariantMetric.variant_id, VariantMetric.metric, *_sums(VariantMetric))
        .where(VariantMetric.campaign_id == cid, VariantMetric.metric.in_(metrics.STRATIFIED))
        .group_by(VariantMetric.variant_id, VariantMetric.metric)
    ).all()
    by_stratum = db.session.execute(
        select(StratumMetric.variant_id, StratumMetric.metric, *_sums(StratumMetric))
        .where(StratumMetric.campaign_id == cid)
        .group_by(StratumMetric.variant_id, StratumMetric.metric)
    ).all()
    assert sorted(map(tuple, by_stratum)) == pytest.approx(sorted(map(tuple, daily)))
    strata = db.session.scalars(
        select(StratumMetric.stratum).where(StratumMetric.metric == "exposure").distinct()
    ).all()
    assert {components(s)[1] for s in strata} == {"mobile", "desktop", "tablet"}
    figures = metrics.stratum_figures([cid], ["order", "close"])[cid]
    for variant_id, counts in figures["order"].items():
        assert sum(c.visitors for c in counts) == totals["order"][variant_id].visitors
        assert sum(c.conversions for c in counts) == totals["order"][variant_id].conversions


def _sums(model):
    return (
        func.sum(model.visitors),
        func.sum(model.conversions),
        func.sum(model.value_sum),
        func.sum(model.value_sum_squares),
    )


def test_a_repeat_customer_is_stratified_by_the_orders_known_at_assignment(client, ab_test):
    site, campaign, _ = ab_test()
    for i in range(2):
        order = {"order_id": f"before-{i}", "visitor_id": "visitor-loyal", "total": 10.0,
                 "currency": "EUR"}  # fmt: skip
        assert post_order(client, site, order).status_code == 201
    assert db.session.scalar(select(Visitor.order_count)) == 2
    assert decide(client, site, "visitor-loyal").status_code == 200
    assert components(db.session.scalar(select(Assignment.stratum)))[0] == "repeat"
