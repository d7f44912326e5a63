"""The history ``funnelcake demo`` writes on a first run: weeks of shoppers, one variant clearly
ahead, and every figure the product shows agreeing with the rows beneath it.

The expected figures are counted here from the raw rows (events, responses, spins, orders) by
their definitions, not read from the rollups the product keeps, and the statistics are checked
against statsmodels.
"""

import re
from collections import defaultdict
from datetime import timedelta
from itertools import groupby
from types import SimpleNamespace

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select, text
from statsmodels.stats.proportion import proportions_ztest

from tests.admin.helpers import log_in
from tests.conftest import empty_all_tables
from tests.helpers import BASE_TEST_CONFIG, AdminClient
from widget_server import create_app
from widget_server.demo.history import seed_history
from widget_server.demo.store import DEMO_POOLS, ensure_demo_site
from widget_server.extensions import db
from widget_server.models import (
    Assignment,
    Campaign,
    CouponCode,
    CouponPool,
    Event,
    Order,
    Response,
    Spin,
    StageChange,
    Visitor,
)
from widget_server.models.types import utcnow
from widget_server.services.campaigns import site_config
from widget_server.services.ingest.events import ingest
from widget_server.services.platform.upsert import insert_ignoring_conflicts
from widget_server.services.promotion import metrics
from widget_server.services.rewards import coupons
from widget_server.services.rewards import orders as orders_service
from widget_server.services.rewards import spin as spin_service


@pytest.fixture(scope="module")
def seeded(database_url, tmp_path_factory):
    """The demo after its first ``funnelcake demo --no-serve``, shared by this module's tests,
    which only read it: ``app``, ``output`` (what the command printed), ``survey``, ``wheel``."""
    app = create_app({**BASE_TEST_CONFIG, "DATABASE_URL": database_url})
    app.config["FUNNEL_FIGURES_TTL_S"] = 0
    app.instance_path = str(tmp_path_factory.mktemp("demo-instance"))
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["demo", "--no-serve"])
        assert result.exit_code == 0, result.output
        campaigns = db.session.scalars(select(Campaign)).all()
        yield SimpleNamespace(
            app=app,
            output=result.output,
            survey=next(c for c in campaigns if c.kind == "survey"),
            wheel=next(c for c in campaigns if c.kind == "wheel"),
        )
        db.session.rollback()
        empty_all_tables()
        db.session.remove()
        db.engine.dispose()


def printed(output: str, label: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(label)).split(":", 1)[1]


@pytest.fixture
def admin_api(seeded):
    token = printed(seeded.output, "Admin token:").strip()
    return AdminClient(seeded.app.test_client(), token)


def variant_counts(campaign: Campaign, conversion_type: str) -> dict[int, tuple[int, int]]:
    """``{variant: (visitors with an impression, of them visitors with a conversion event)}``,
    counted from the stored events alone."""
    rows = db.session.execute(
        select(Event.variant_id, Event.visitor_id, Event.type).where(
            Event.campaign_id == campaign.id, Event.type.in_(("impression", conversion_type))
        )
    ).all()
    seen, converted = defaultdict(set), defaultdict(set)
    for variant_id, visitor_id, kind in rows:
        (seen if kind == "impression" else converted)[variant_id].add(visitor_id)
    return {v: (len(seen[v]), len(seen[v] & converted[v])) for v in seen}


def test_first_run_writes_weeks_of_visitors_answers_spins_and_orders(seeded):
    first, last = db.session.execute(
        select(func.min(Visitor.first_seen_at), func.max(Visitor.first_seen_at))
    ).one()
    assert timedelta(weeks=4) <= last - first <= timedelta(weeks=6)
    days = {at.date() for (at,) in db.session.execute(select(Event.occurred_at))}
    assert len(days) >= 35
    assert db.session.scalar(select(func.count()).select_from(Visitor)) >= 2000
    completed = db.session.scalar(
        select(func.count()).where(Response.campaign_id == seeded.survey.id, Response.completed)
    )
    partial = db.session.scalar(
        select(func.count()).where(
            Response.campaign_id == seeded.survey.id, Response.completed.is_(False)
        )
    )
    assert completed >= 300 and partial >= 50
    pool_codes_won = db.session.scalar(
        select(func.count()).where(Spin.coupon_id.is_not(None), Spin.campaign_id == seeded.wheel.id)
    )
    assert pool_codes_won >= 50
    redeemed = db.session.scalars(
        select(CouponCode.code).where(CouponCode.status == "redeemed")
    ).all()
    assert redeemed and set(redeemed) <= set(db.session.scalars(select(Order.coupon_code)))
    orders_per_customer = db.session.execute(
        select(Order.customer_id, func.count()).group_by(Order.customer_id)
    ).all()
    assert sum(1 for _, n in orders_per_customer if n > 1) >= 10  # repeat customers
    # The command says what it wrote.
    history = printed(seeded.output, "History:")
    visitors = db.session.scalar(select(func.count()).select_from(Visitor))
    orders = db.session.scalar(select(func.count()).select_from(Order))
    assert f"{visitors:,} visitors" in history and f"{orders:,} orders" in history


def test_results_api_counts_what_the_events_say(seeded, admin_api):
    for campaign, conversion in ((seeded.survey, "complete"), (seeded.wheel, None)):
        body = admin_api.get(f"/api/v1/admin/campaigns/{campaign.id}/results").json
        if conversion is None:  # the wheel's goal is the spin: spins are rows, not events
            seen = variant_counts(campaign, "impression")
            spins = dict(
                db.session.execute(
                    select(Spin.variant_id, func.count()).group_by(Spin.variant_id)
                ).all()
            )
            expected = {v: (n, spins.get(v, 0)) for v, (n, _) in seen.items()}
        else:
            expected = variant_counts(campaign, conversion)
        shown = {v["variant_id"]: (v["visitors"], v["conversions"]) for v in body["variants"]}
        assert shown == expected


def test_seeded_revenue_rollups_are_the_orders_of_exposed_visitors(seeded):
    """Revenue per visitor counts a visitor's orders from their first impression on."""
    first_seen = dict(
        db.session.execute(
            select(Event.visitor_id, func.min(Event.occurred_at))
            .where(Event.campaign_id == seeded.survey.id, Event.type == "impression")
            .group_by(Event.visitor_id)
        ).all()
    )
    variant_of = dict(
        db.session.execute(
            select(Event.visitor_id, Event.variant_id).where(
                Event.campaign_id == seeded.survey.id, Event.type == "impression"
            )
        ).all()
    )
    spent = defaultdict(float)
    for visitor_id, total, at in db.session.execute(
        select(Order.visitor_id, Order.total, Order.ordered_at)
    ):
        if visitor_id in first_seen and at >= first_seen[visitor_id]:
            spent[visitor_id] += float(total)
    figures = metrics.campaign_figures(seeded.survey.id, "revenue")
    for variant in seeded.survey.variants:
        buyers = [total for v, total in spent.items() if variant_of[v] == variant.id]
        shown = figures[variant.id]
        assert shown.conversions == len(buyers)
        assert shown.value_sum == pytest.approx(sum(buyers))
        assert shown.value_sum_squares == pytest.approx(sum(t * t for t in buyers))


def test_one_variant_is_clearly_ahead_by_an_independent_z_test(seeded):
    counts = variant_counts(seeded.survey, "complete")
    control = next(v.id for v in seeded.survey.variants if v.is_control)
    [other] = [v.id for v in seeded.survey.variants if not v.is_control]
    (n_a, c_a), (n_b, c_b) = counts[control], counts[other]
    assert min(n_a, n_b) >= 500  # the promotion's minimum visitors per variant
    z, p_value = proportions_ztest([c_b, c_a], [n_b, n_a])
    assert c_b / n_b > c_a / n_a and z > 5 and p_value < 1e-6


def test_results_show_the_leader_as_a_significant_winner(seeded, admin_api):
    body = admin_api.get(f"/api/v1/admin/campaigns/{seeded.survey.id}/results").json
    leader = next(v for v in seeded.survey.variants if not v.is_control)
    assert body["decision"]["action"] == "promote"
    assert body["decision"]["winner_variant_id"] == leader.id
    assert body["srm"]["ok"] and body["running_days"] >= 28


def expected_stage(scores: dict, orders: int) -> str:
    """The default funnel's stages, written out: the last whose rule holds."""
    emotional = scores.get("emotional", 0) >= 4
    stage = "new_visitor"
    if orders >= 1:
        stage = "customer"
    if orders >= 2:
        stage = "repeat_customer"
    if emotional:
        stage = "emotional"
    if emotional and scores.get("intentional", 0) >= 4:
        stage = "intentional"
        if scores.get("action", 0) >= 4:
            stage = "advocate"
    return stage


def test_funnel_figures_count_the_answers_and_orders(seeded, admin_api):
    option_scores = {"yes": 5, "would": 3, "no": 1}
    scores = defaultdict(dict)
    for visitor_id, answers in db.session.execute(
        select(Response.visitor_id, Response.answers).where(
            Response.campaign_id == seeded.survey.id
        )
    ):
        for step_id, answer in answers.items():
            value = answer["value"]
            scores[visitor_id][step_id] = option_scores.get(value, value)
    orders = defaultdict(int)
    for (visitor_id,) in db.session.execute(select(Order.visitor_id)):
        orders[visitor_id] += 1
    per_stage = defaultdict(int)
    for (visitor_id,) in db.session.execute(select(Visitor.id)):
        per_stage[expected_stage(scores[visitor_id], orders[visitor_id])] += 1

    site_id = seeded.survey.site_id
    body = admin_api.get(f"/api/v1/admin/sites/{site_id}/funnel").json
    assert {s["key"]: s["visitors"] for s in body["stages"]} == {
        key: per_stage[key] for key in (s["key"] for s in body["stages"])
    }
    totals = body["totals"]
    order_totals = [float(t) for (t,) in db.session.execute(select(Order.total))]
    customers = db.session.execute(
        select(Order.customer_id, func.count()).group_by(Order.customer_id)
    ).all()
    assert totals["orders"] == len(order_totals)
    assert float(totals["revenue"]) == pytest.approx(sum(order_totals))
    assert totals["customers"] == len(customers)
    assert totals["repeat_customers"] == sum(1 for _, n in customers if n > 1)
    weeks = {row["week"] for row in body["conversion_by_week"]}
    assert len(weeks) >= 5  # stage changes dated through the weeks, not all today
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    assert db.session.scalar(select(func.max(StageChange.changed_at))) < today


def test_admin_pages_show_the_seeded_figures(seeded, admin_api):
    client = seeded.app.test_client()
    username, password = printed(seeded.output, "Admin login:").strip().split(" / ")
    assert log_in(client, username, password).status_code == 302
    results = client.get(f"/admin/campaigns/{seeded.survey.id}/results").get_data(as_text=True)
    rows = re.findall(r'"Visitors">([\d,]+)</td>\s*<td[^>]*"Conversions">([\d,]+)<', results)
    expected = variant_counts(seeded.survey, "complete").values()
    assert sorted(rows) == sorted((f"{n:,}", f"{c:,}") for n, c in expected)
    assert "Promote the winner" in results
    site_id = seeded.survey.site_id
    funnel = client.get(f"/admin/sites/{site_id}/funnel").get_data(as_text=True)
    figures = admin_api.get(f"/api/v1/admin/sites/{site_id}/funnel").json
    for stage in figures["stages"]:
        assert f"{stage['visitors']:,}" in funnel
    assert f"<dd>{figures['totals']['orders']:,}</dd>" in funnel
    assert f"<dd>{figures['totals']['revenue']}</dd>" in funnel


# -- the history against a replay of the same traffic through the live services ---------------

#: What is compared: every row the services derive from events, spins and orders. Responses'
#: start and update times depend on how events were batched, so they are left out; codes are
#: compared by id (each database generated its own random code texts).
DERIVED_ROWS = {
    "assignments": "SELECT campaign_id, visitor_id, variant_id, impressions, first_impression_at,"
    " last_closed_at, completed_at, reward_only FROM assignments ORDER BY 1, 2",
    "responses": "SELECT campaign_id, visitor_id, variant_id, answers, completed, completed_at"
    " FROM responses ORDER BY 1, 2",
    "metric_conversions": "SELECT campaign_id, visitor_id, metric, variant_id, round(value, 6),"
    " first_at FROM metric_conversions ORDER BY 1, 2, 3",
    "step_reach": "SELECT campaign_id, variant_id, step_id, responses FROM step_reach"
    " ORDER BY 1, 2, 3",
    "variant_metrics": "SELECT campaign_id, variant_id, metric, day, visitors, conversions,"
    " round(value_sum, 6), round(value_sum_squares, 4) FROM variant_metrics ORDER BY 1, 2, 3, 4",
    "stratum_metrics": "SELECT campaign_id, variant_id, metric, stratum, visitors, conversions,"
    " round(value_sum, 6), round(value_sum_squares, 4) FROM stratum_metrics ORDER BY 1, 2, 3, 4",
    "visitors": "SELECT id, scores, stage, order_count, total_spent, last_popup_end_at"
    " FROM visitors ORDER BY 1",
    "stage_changes": "SELECT visitor_id, from_stage, to_stage, cause FROM stage_changes"
    " ORDER BY 1, 2, 3, 4",
    "coupon_codes": "SELECT id, status, visitor_id, campaign_id, variant_id, assigned_at"
    " FROM coupon_codes ORDER BY 1",
    "spins": "SELECT visitor_id, slice_index, coupon_id, email, created_at FROM spins ORDER BY 1",
    "orders": "SELECT order_ref, total, coupon_id, ordered_at, visitor_id, customer_id FROM orders"
    " ORDER BY 1",
}


def sqlite_app(path):
    app = create_app({**BASE_TEST_CONFIG, "DATABASE_URL": f"sqlite:///{path}"})
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
    return app


def derived_rows() -> dict[str, list]:
    return {name: db.session.execute(text(sql)).all() for name, sql in DERIVED_ROWS.items()}


def columns(row, *names) -> dict:
    return {name: getattr(row, name) for name in names}


def seeded_traffic() -> SimpleNamespace:
    """What reached the services in the seeded history: the visitors and what decide assigned
    them, the events, spins and orders, and the codes generated beyond the demo's pools."""
    visitors = [
        columns(v, "site_id", "visitor_key", "customer_id", "email", "email_consent")
        | columns(v, "first_seen_at", "last_seen_at")
        | {"attributes": {}, "scores": {}, "order_count": 0, "total_spent": 0}
        for v in db.session.scalars(select(Visitor).order_by(Visitor.id))
    ]
    assignments = [
        columns(a, "campaign_id", "visitor_id", "variant_id", "reward_only", "assigned_at")
        | columns(a, "stratum")
        | {"holdout": False, "sampled_out": False, "impressions": 0}
        for a in db.session.scalars(select(Assignment).order_by(Assignment.id))
    ]
    keys = dict(db.session.execute(select(Visitor.id, Visitor.visitor_key)).all())
    events = [
        {
            "id": e.event_uuid,
            "type": e.type,
            "visitor_id": keys[e.visitor_id],
            "campaign_id": e.campaign_id,
            "variant_id": e.variant_id,
            "ts": e.occurred_at,
            "data": e.data,
        }
        for e in db.session.scalars(select(Event).order_by(Event.occurred_at, Event.id))
    ]
    spins = [
        columns(s, "variant_id", "visitor_id", "slice_index", "label", "code", "coupon_id")
        | columns(s, "email", "created_at")
        for s in db.session.scalars(select(Spin).order_by(Spin.created_at))
    ]
    orders = [
        {
            "order_id": o.order_ref,
            "customer_id": o.customer_id,
            "visitor_id": keys[o.visitor_id],
            "total": o.total,
            "currency": o.currency,
            "created_at": o.ordered_at,
            "coupon_code": o.coupon_code,
        }
        for o in db.session.scalars(select(Order).order_by(Order.ordered_at))
    ]
    demo_sizes = {name: size for name, _, size in DEMO_POOLS}
    extra_codes = {
        name: count - demo_sizes[name]
        for name, count in db.session.execute(
            select(CouponPool.name, func.count())
            .join(CouponCode, CouponCode.pool_id == CouponPool.id)
            .group_by(CouponPool.name)
        )
    }
    return SimpleNamespace(
        visitors=visitors,
        assignments=assignments,
        events=events,
        spins=spins,
        orders=orders,
        extra_codes=extra_codes,
    )


def replay(traffic: SimpleNamespace) -> None:
    """Feed the seeded traffic to the services the snippet and the shop's back end call: events
    through ingestion a day at a time, spins by the spin service's steps (its draw being the
    history's), orders through the orders service."""
    site = ensure_demo_site()
    for name, extra in traffic.extra_codes.items():
        coupons.generate_codes(coupons.find_pool(site.id, name), extra, "REPLAY-")
    insert_ignoring_conflicts(Visitor, traffic.visitors, ["site_id", "visitor_key"])
    insert_ignoring_conflicts(Assignment, traffic.assignments, ["campaign_id", "visitor_id"])
    db.session.commit()
    config = site_config.get_site_config(site.site_key)
    for _, day in groupby(traffic.events, key=lambda event: event["ts"].date()):
        ingest(config, list(day))
    wheel = db.session.scalar(select(Campaign).where(Campaign.kind == "wheel"))
    slices = wheel.variants[0].content["slices"]
    codes = {}
    for spun in traffic.spins:
        visitor_id, at = spun["visitor_id"], spun["created_at"]
        reward = slices[spun["slice_index"]]["reward"]
        coupon_id, code = None, reward.get("code")
        if reward["type"] == "pool":
            coupon_id, code = spin_service.allocate_code(
                reward["pool_id"], wheel.id, spun["variant_id"], visitor_id, at
            )
        codes[spun["code"]] = code
        db.session.add(Spin(campaign_id=wheel.id, **{**spun, "code": code, "coupon_id": coupon_id}))
        metrics.record_conversion(wheel.id, visitor_id, "spin", at)
        if spun["email"]:
            metrics.record_conversion(wheel.id, visitor_id, "email_capture", at)
    db.session.commit()
    for order in traffic.orders:
        code = order.pop("coupon_code")
        orders_service.record_order(site.id, order | ({"coupon_code": codes[code]} if code else {}))


def test_seeded_rows_are_those_the_live_services_make_of_the_same_traffic(tmp_path):
    """The history is written in bulk; the live services, fed its traffic one call at a time,
    derive exactly the same assignments, responses, rollups, scores, stages and code stock."""
    seeded_app = sqlite_app(tmp_path / "seeded.db")
    with seeded_app.app_context():
        assert seed_history(ensure_demo_site()) is not None
        traffic = seeded_traffic()
        expected = derived_rows()
    replayed_app = sqlite_app(tmp_path / "replayed.db")
    with replayed_app.app_context():
        replay(traffic)
        replayed = derived_rows()
    for name in DERIVED_ROWS:
        assert replayed[name] == expected[name], name
