"""Rollups: per-variant figures kept on ingest equal a direct count over the raw events."""

import random
from collections import defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import text

from tests.api.helpers import event, send_events
from tests.promotion.helpers import visit
from widget_server.extensions import db
from widget_server.models.types import utcnow
from widget_server.services.promotion import metrics

EMAIL_STEP = {"id": "mail", "type": "email", "question": "Your e-mail?"}


@pytest.fixture
def ab_campaign(make_site, make_campaign, survey_content_two):
    site = make_site()
    campaign = make_campaign(
        site,
        variants=[
            {"name": "A", "is_control": True, "content": survey_content_two},
            {"name": "B", "content": survey_content_two},
        ],
    )
    return site, campaign


@pytest.fixture
def survey_content_two():
    from tests.conftest import survey_content

    return survey_content()


def direct_count(campaign_id):
    """Count from events and assignments alone: visitors with an impression, converters."""
    assigned = dict(
        db.session.execute(
            text(
                "SELECT visitor_id, variant_id FROM assignments "
                "WHERE campaign_id = :c AND variant_id IS NOT NULL AND NOT sampled_out"
            ),
            {"c": campaign_id},
        ).all()
    )
    rows = db.session.execute(
        text("SELECT visitor_id, type, data FROM events WHERE campaign_id = :c"),
        {"c": campaign_id},
    ).all()
    seen, converted = set(), defaultdict(set)
    for visitor_id, kind, data in rows:
        data = data if isinstance(data, dict) else __import__("json").loads(data or "{}")
        if kind == "impression":
            seen.add(visitor_id)
        if kind == "complete":
            converted["completion"].add(visitor_id)
        if kind in ("spin", "claim"):
            converted[kind].add(visitor_id)
        email = data.get("email") or (data.get("value") if kind == "answer" else None)
        if isinstance(email, str) and "@" in email:
            converted["email_capture"].add(visitor_id)
    counts = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for visitor_id in seen & assigned.keys():
        variant_id = assigned[visitor_id]
        for metric in ("completion", "spin", "claim", "email_capture"):
            counts[metric][variant_id][0] += 1
            counts[metric][variant_id][1] += visitor_id in converted[metric]
    return counts


def test_rollups_equal_a_direct_count_over_messy_traffic(client, ab_campaign):
    site, campaign = ab_campaign
    campaign_id = campaign["id"]
    rng = random.Random(7)
    served = visit(client, site, campaign_id, [f"visitor-m-{i:04d}" for i in range(160)])
    now = utcnow()
    batches, late = [], []
    for n, (visitor_id, variant_id) in enumerate(served.items()):
        ev = []
        if rng.random() < 0.8:
            impression = event("impression", visitor_id, campaign_id, variant_id)
            ev += [impression, impression]  # the same id twice: stored once
            ev.append(event("impression", visitor_id, campaign_id, variant_id))
        for kind in ("complete", "spin", "claim", "complete"):
            if rng.random() < 0.3:
                ev.append(event(kind, visitor_id, campaign_id, variant_id))
        if rng.random() < 0.2:
            ev.append(event("answer", visitor_id, campaign_id, variant_id, step_id="mail",
                            value=f"{visitor_id}@example.com"))  # fmt: skip
        if rng.random() < 0.1:
            ev.append(event("spin", visitor_id, campaign_id, variant_id, email="x@shop.example"))
        for e in ev:
            e["ts"] = (now - timedelta(days=n % 3, seconds=rng.randrange(100))).isoformat()
        # Conversions first, the impression in a later batch: counted when it arrives.
        if n % 5 == 0:
            late += [e for e in ev if e["type"] == "impression"]
            ev = [e for e in ev if e["type"] != "impression"]
        batches.append(ev)
    flat = [e for b in batches for e in b]
    for start in range(0, len(flat), 90):
        assert send_events(client, site, flat[start : start + 90]).status_code == 202
    assert send_events(client, site, flat[:90]).json["duplicates"] == 90
    for start in range(0, len(late), 90):
        assert send_events(client, site, late[start : start + 90]).status_code == 202

    expected = direct_count(campaign_id)
    for metric in ("completion", "spin", "claim", "email_capture"):
        figures = metrics.campaign_figures(campaign_id, metric)
        got = {v: [f.visitors, f.conversions] for v, f in figures.items()}
        assert got == {v: c for v, c in expected[metric].items()}, metric
        assert sum(f.conversions for f in figures.values()) > 5, metric

    series = metrics.daily_series(campaign_id, "completion")
    assert len({p.day for p in series}) == 3
    for variant_id, f in metrics.campaign_figures(campaign_id, "completion").items():
        points = [p for p in series if p.variant_id == variant_id]
        assert sum(p.visitors for p in points) == f.visitors
        assert sum(p.conversions for p in points) == f.conversions
    # The results endpoint's single read gives the same totals and points as the two above.
    totals, points = metrics.figures_and_series(campaign_id, "completion")
    assert totals == metrics.figures([campaign_id])[campaign_id]
    assert points == series


def test_revenue_keeps_exact_sum_and_sum_of_squares_per_visitor(client, ab_campaign):
    site, campaign = ab_campaign
    campaign_id = campaign["id"]
    served = visit(client, site, campaign_id, [f"visitor-r-{i:04d}" for i in range(12)])
    visitor_pk = dict(db.session.execute(text("SELECT visitor_key, id FROM visitors")).all())
    now = utcnow()
    rng = random.Random(3)
    totals = defaultdict(float)
    exposed = list(served)[:10]  # the last two never see the popup: their orders do not count
    # Half of the visitors order before their impression is ingested (kept, counted later).
    early = exposed[:5]
    for visitor_key in list(served):
        for _ in range(rng.randrange(0, 3)):
            amount = round(rng.uniform(5, 80), 2)
            metrics.record_conversion(campaign_id, visitor_pk[visitor_key], "revenue", now,
                                      value=amount)  # fmt: skip
            if visitor_key in exposed:
                totals[visitor_key] += amount
        if visitor_key == early[-1]:
            db.session.commit()
            impressions = [event("impression", v, campaign_id, served[v]) for v in exposed]
            for e in impressions:
                e["ts"] = (now - timedelta(minutes=5)).isoformat()
            assert send_events(client, site, impressions).status_code == 202
    # An order dated before the visitor's first impression does not count.
    assert not metrics.record_conversion(
        campaign_id, visitor_pk[exposed[0]], "revenue", now - timedelta(hours=1), value=999.0
    )
    db.session.commit()

    figures = metrics.campaign_figures(campaign_id, "revenue")
    for variant_id in set(served.values()):
        members = [v for v in exposed if served[v] == variant_id]
        values = [totals[v] for v in members]
        f = figures[variant_id]
        assert f.visitors == len(members)
        assert f.conversions == sum(1 for x in values if x > 0)
        assert f.value_sum == pytest.approx(sum(values))
        assert f.value_sum_squares == pytest.approx(sum(x * x for x in values))


def test_conversion_metric_counts_each_visitor_once(client, ab_campaign):
    site, campaign = ab_campaign
    campaign_id = campaign["id"]
    served = visit(client, site, campaign_id, ["visitor-once"])
    variant_id = served["visitor-once"]
    evs = [event("impression", "visitor-once", campaign_id, variant_id)]
    evs += [event("claim", "visitor-once", campaign_id, variant_id) for _ in range(3)]
    assert send_events(client, site, evs).status_code == 202
    visitor_pk = db.session.execute(text("SELECT id FROM visitors")).scalar()
    assert metrics.record_conversion(campaign_id, visitor_pk, "coupon_redemption", utcnow())
    assert not metrics.record_conversion(campaign_id, visitor_pk, "coupon_redemption", utcnow())
    db.session.commit()
    for metric in ("claim", "coupon_redemption"):
        f = metrics.campaign_figures(campaign_id, metric)[variant_id]
        assert (f.visitors, f.conversions) == (1, 1)


@pytest.mark.parametrize("metric, value", [("nope", 0.0), ("completion", 0.0), ("revenue", -1.0)])
def test_record_conversion_refuses_bad_input(app, metric, value):
    with pytest.raises(ValueError, match="metric|value"):
        metrics.record_conversion(1, 1, metric, utcnow(), value=value)
