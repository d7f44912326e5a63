"""Funnel figures: hand-computed repeat-customer figures, CSAT, NPS, variants, weekly flow."""

import time
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from tests.funnel.helpers import (
    answer_survey,
    figures,
    identify,
    place_order,
    put_stages,
    visitor,
)
from tests.helpers import decide, survey_variants
from widget_server.extensions import db
from widget_server.models import Assignment, StageChange
from widget_server.models.types import utcnow


def test_repeat_customer_figures_equal_hand_computation(admin, client, site):
    for total in ("10.00",):
        place_order(site, None, total, customer_id="c-A")
    for total in ("20.00", "30.00"):
        place_order(site, None, total, customer_id="c-B")
    for total in ("5.00", "5.00", "5.00"):
        place_order(site, None, total, customer_id="c-C")
    for _ in range(5):
        place_order(site, None, "1.00", customer_id="c-D")
    decide(client, site, "visitor-onlyvis")
    place_order(site, "visitor-onlyvis", "40.00")  # a buyer known by visitor only
    place_order(site, None, "100.00")  # a guest: neither customer nor visitor

    totals = figures(admin, site)["totals"]

    # Hand computation: customers A(1) B(2) C(3) D(5) visitor(1) -> 5 customers, 3 repeat.
    assert totals["customers"] == 5
    assert totals["repeat_customers"] == 3
    assert totals["repeat_customer_rate"] == 60.0
    assert totals["bought_times"] == {"1": 40.0, "2": 20.0, "3": 20.0, "4+": 20.0}
    assert totals["orders"] == 12
    assert totals["revenue"] == "120.00"
    assert totals["average_order_value"] == 10.0
    assert totals["revenue_per_customer"] == 24.0
    assert (totals["unattributed_orders"], totals["unattributed_revenue"]) == (1, "100.00")


def test_figures_per_stage_count_visitors_and_their_orders(admin, client, site):
    identify(client, site, {"visitor_id": "visitor-browse1"})
    identify(client, site, {"visitor_id": "visitor-once001"})
    place_order(site, "visitor-once001", "40.00")
    identify(client, site, {"visitor_id": "visitor-twice01", "customer_id": "c-B"})
    place_order(site, "visitor-twice01", "20.00")
    place_order(site, "visitor-twice01", "31.00")
    decide(client, site, "visitor-unstage")

    body = figures(admin, site)
    stages = {s["key"]: s for s in body["stages"]}
    assert [s["key"] for s in body["stages"]][:3] == ["new_visitor", "customer", "repeat_customer"]
    assert {k: s["visitors"] for k, s in stages.items()} == {
        "new_visitor": 2,  # identified, and not yet staged (visitor-unstage): the entry stage
        "customer": 1,
        "repeat_customer": 1,
        "emotional": 0,
        "intentional": 0,
        "advocate": 0,
    }
    assert (body["not_yet_staged_visitors"], body["unstaged_visitors"]) == (1, 0)
    assert body["totals"]["visitors"] == 4
    repeat = stages["repeat_customer"]
    assert (repeat["customers"], repeat["repeat_customer_rate"], repeat["revenue"]) == (
        1,
        100.0,
        "51.00",
    )
    assert repeat["average_order_value"] == 25.5
    assert stages["customer"]["bought_times"] == {"1": 100.0, "2": 0.0, "3": 0.0, "4+": 0.0}
    assert stages["emotional"]["repeat_customer_rate"] is None


def test_csat_and_nps_from_survey_answers(admin, client, site, make_campaign):
    content = {
        "steps": [
            {
                "id": "csat",
                "type": "scale",
                "question": "How satisfied are you?",
                "dimension": "csat",
                "scale": {"min": 1, "max": 5},
            },
            {"id": "nps", "type": "nps", "question": "Would you recommend us?"},
        ]
    }
    survey = make_campaign(site, variants=[{"name": "A", "is_control": True, "content": content}])
    answers = [(5, 10), (4, 9), (3, 8), (1, 6)]
    for index, (csat, nps) in enumerate(answers):
        answer_survey(client, site, survey, f"visitor-rate{index:03d}", {"csat": csat, "nps": nps})
    answer_survey(client, site, survey, "visitor-npsonly", {"nps": 0})

    totals = figures(admin, site)["totals"]

    assert (totals["csat"], totals["csat_respondents"]) == (50.0, 4)  # 5 and 4 of 5, 4, 3, 1
    # Promoters 10, 9; detractors 6, 0; passive 8 -> 40% - 40% over 5 respondents.
    assert (totals["nps"], totals["nps_respondents"]) == (0.0, 5)


def test_figures_per_variant_of_a_campaign(admin, client, site, make_campaign):
    campaign = make_campaign(site, variants=survey_variants())
    keys = [f"visitor-var{i:05d}" for i in range(40)]
    for key in keys:
        decide(client, site, key)
    for key in keys[:10]:
        place_order(site, key, "10.00")
    for key in keys[:4]:
        place_order(site, key, "5.00")

    rows = figures(admin, site, campaign_id=campaign["id"])["per_variant"]

    variant_of = dict(
        db.session.execute(select(Assignment.visitor_id, Assignment.variant_id)).all()
    )
    by_variant = {row["variant_id"]: row for row in rows}
    assert {row["name"] for row in rows} <= {"A", "B"}
    for variant_id, row in by_variant.items():
        members = [k for k in keys if variant_of[visitor(site, k).id] == variant_id]
        buyers = [k for k in members if k in keys[:10]]
        repeat = [k for k in members if k in keys[:4]]
        assert row["visitors"] == len(members)
        assert row["customers"] == len(buyers)
        assert row["repeat_customers"] == len(repeat)
        assert row["revenue"] == f"{10 * len(buyers) + 5 * len(repeat):.2f}"
    assert sum(row["visitors"] for row in rows) == 40


def test_per_variant_of_another_sites_campaign_is_404(admin, make_site, make_campaign, site):
    other = make_campaign(make_site(name="Other"))
    response = admin.get(
        f"/api/v1/admin/sites/{site['id']}/funnel", query_string={"campaign_id": other["id"]}
    )
    assert response.status_code == 404
    assert "campaign_id" in response.json["error"]["fields"]


@pytest.mark.parametrize("query", [{"campaign_id": "x"}, {"weeks": 0}, {"weeks": 500}])
def test_bad_funnel_query_is_400_naming_the_field(admin, site, query):
    response = admin.get(f"/api/v1/admin/sites/{site['id']}/funnel", query_string=query)
    assert response.status_code == 400
    assert set(response.json["error"]["fields"]) == set(query)


def test_conversion_by_week_from_stage_history(admin, client, site):
    for key in ("visitor-week001", "visitor-week002", "visitor-week003"):
        decide(client, site, key)
    ids = [visitor(site, k).id for k in ("visitor-week001", "visitor-week002", "visitor-week003")]
    today = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
    monday = today - timedelta(days=today.weekday()) - timedelta(weeks=2)
    rows = [
        (ids[0], None, "new_visitor", monday),
        (ids[1], None, "new_visitor", monday + timedelta(days=1)),
        (ids[2], None, "new_visitor", monday + timedelta(days=6)),
        (ids[0], "new_visitor", "customer", monday + timedelta(days=2)),
        (ids[0], "customer", "new_visitor", monday + timedelta(days=8)),  # backwards
        (ids[1], "new_visitor", "emotional", monday + timedelta(days=9)),
    ]
    db.session.execute(
        insert(StageChange),
        [
            {
                "site_id": site["id"],
                "visitor_id": v,
                "from_stage": a,
                "to_stage": b,
                "cause": "answer",
                "changed_at": at,
            }
            for v, a, b, at in rows
        ],
    )
    db.session.commit()

    table = {(row["week"], row["stage"]): row for row in figures(admin, site)["conversion_by_week"]}

    first, second = monday.date().isoformat(), (monday + timedelta(weeks=1)).date().isoformat()
    assert table[(first, "new_visitor")] == {
        "week": first,
        "stage": "new_visitor",
        "entered": 3,
        "advanced": 1,
        "advanced_rate": pytest.approx(33.33),
    }
    assert table[(first, "customer")]["entered"] == 1
    assert table[(second, "new_visitor")]["entered"] == 1
    assert table[(second, "new_visitor")]["advanced"] == 1
    assert (second, "customer") not in table  # moving back is not advancing
    assert table[(second, "emotional")]["entered"] == 1


def test_csat_and_nps_per_variant(admin, client, site, make_campaign):
    content = {
        "steps": [
            {"id": "csat", "type": "scale", "question": "Satisfied?", "dimension": "csat"},
            {"id": "nps", "type": "nps", "question": "Recommend?"},
        ]
    }
    survey = make_campaign(site, variants=[{"name": "A", "is_control": True, "content": content}])
    answer_survey(client, site, survey, "visitor-varcsat1", {"csat": 5, "nps": 10})
    answer_survey(client, site, survey, "visitor-varcsat2", {"csat": 2, "nps": 3})

    (row,) = figures(admin, site, campaign_id=survey["id"])["per_variant"]

    assert (row["csat"], row["csat_respondents"]) == (50.0, 2)
    assert (row["nps"], row["nps_respondents"]) == (0.0, 2)


def test_figures_answer_from_snapshot_then_refresh_in_background(admin, app, client, site):
    """Within the TTL the same snapshot answers; past it the stale one answers once while a
    background recomputation runs, and the next call sees the new figures."""
    from widget_server.services.funnel.figures import snapshots

    app.config["FUNNEL_FIGURES_TTL_S"] = 60.0
    identify(client, site, {"visitor_id": "visitor-snap0001"})
    first = figures(admin, site)
    place_order(site, "visitor-snap0001", "9.00")

    cached = figures(admin, site)
    assert cached == first
    assert cached["totals"]["orders"] == 0

    app.config["FUNNEL_FIGURES_TTL_S"] = 0.001
    time.sleep(0.01)
    stale = figures(admin, site)
    snapshots().wait()
    fresh = figures(admin, site)
    snapshots().wait()

    assert stale["totals"]["orders"] == 0
    assert fresh["totals"]["orders"] == 1
    assert fresh["computed_at"] > first["computed_at"]


def test_replacing_stages_drops_the_snapshot(admin, app, client, site):
    app.config["FUNNEL_FIGURES_TTL_S"] = 60.0
    assert [s["key"] for s in figures(admin, site)["stages"]][0] == "new_visitor"
    stages = [{"key": "everyone", "name": "Everyone", "rule": {}}]
    put_stages(admin, site, stages)
    assert [s["key"] for s in figures(admin, site)["stages"]] == ["everyone"]


def test_figures_are_live_without_a_ttl(admin, app, client, site):
    app.config["FUNNEL_FIGURES_TTL_S"] = 0
    identify(client, site, {"visitor_id": "visitor-live0001"})
    assert figures(admin, site)["totals"]["orders"] == 0
    place_order(site, "visitor-live0001", "9.00")
    assert figures(admin, site)["totals"]["orders"] == 1
