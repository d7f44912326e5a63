"""Stages from answers, orders and identify: a scripted cohort, targeting, history, admin API."""

from itertools import pairwise

import pytest

from tests.funnel.helpers import (
    answer_survey,
    history,
    identify,
    loyalty_campaign,
    place_order,
    visitor,
)
from tests.helpers import decide, event, send_events, statements_sent

LOVES = {"emotional": 5, "intentional": 4, "action": "yes"}
LIKES = {"emotional": 4, "intentional": 2, "action": "would"}
MEH = {"emotional": 2, "action": "no"}


def test_scripted_cohort_lands_in_expected_stages(client, site, make_campaign):
    survey = loyalty_campaign(make_campaign, site)
    cohort = {
        "visitor-browse": ([], None, "new_visitor"),
        "visitor-buyer1": ([], ["20.00"], "customer"),
        "visitor-buyer2": ([], ["20.00", "35.50"], "repeat_customer"),
        "visitor-likes01": (["likes"], ["5.00"], "emotional"),
        "visitor-intends": (["intends"], [], "intentional"),
        "visitor-loves01": (["loves"], [], "advocate"),
        "visitor-meh0001": (["meh"], ["9.99", "9.99"], "repeat_customer"),
    }
    answers = {
        "likes": LIKES,
        "intends": {"emotional": 4, "intentional": 5, "action": "would"},
        "loves": LOVES,
        "meh": MEH,
    }
    for key, (surveys, orders, _) in cohort.items():
        decide(client, site, key)
        identify(client, site, {"visitor_id": key})
        for name in surveys:
            answer_survey(client, site, survey, key, answers[name])
        for total in orders or ():
            place_order(site, key, total)
    assert {key: visitor(site, key).stage for key in cohort} == {
        key: expected for key, (_, _, expected) in cohort.items()
    }
    buyer = visitor(site, "visitor-buyer2")
    assert (buyer.order_count, str(buyer.total_spent)) == (2, "55.50")
    assert visitor(site, "visitor-loves01").scores == {
        "action": 5.0,
        "emotional": 5.0,
        "intentional": 4.0,
    }


def test_latest_answer_to_a_question_counts(client, site, make_campaign):
    survey = loyalty_campaign(make_campaign, site)
    answer_survey(client, site, survey, "visitor-change", {"emotional": 5}, complete=False)
    answer_survey(client, site, survey, "visitor-change", {"emotional": 2}, complete=False)
    assert visitor(site, "visitor-change").scores == {"emotional": 2.0}
    assert visitor(site, "visitor-change").stage == "new_visitor"


def test_stage_history_is_complete_with_causes(client, site, make_campaign):
    survey = loyalty_campaign(make_campaign, site)
    key = "visitor-history"
    identify(client, site, {"visitor_id": key})
    place_order(site, key)
    place_order(site, key)
    answer_survey(client, site, survey, key, LOVES)
    identify(client, site, {"visitor_id": key, "attributes": {"plan": "gold"}})  # no change
    assert history(site, key) == [
        (None, "new_visitor", "identify"),
        ("new_visitor", "customer", "order"),
        ("customer", "repeat_customer", "order"),
        ("repeat_customer", "advocate", "answer"),
    ]


def test_stage_targeted_campaign_is_served_only_to_its_stage(client, site, make_campaign):
    survey = loyalty_campaign(make_campaign, site, targeting={"stages_not_in": ["advocate"]})
    vip = make_campaign(site, name="VIP offer", targeting={"stages_in": ["emotional"]})
    answer_survey(client, site, survey, "visitor-emotion", LIKES)
    answer_survey(client, site, survey, "visitor-neutral", MEH)
    shown = {
        key: {c["campaign_id"] for c in decide(client, site, key).json["campaigns"]}
        for key in ("visitor-emotion", "visitor-neutral", "visitor-unknown")
    }
    assert vip["id"] in shown["visitor-emotion"]
    assert vip["id"] not in shown["visitor-neutral"]
    assert vip["id"] not in shown["visitor-unknown"]


def test_entry_stage_campaign_reaches_visitors_with_no_facts_yet(client, site, make_campaign):
    """The funnel counts a visitor who never answered in its entry stage; decide agrees."""
    survey = loyalty_campaign(make_campaign, site, priority=1)
    welcome = make_campaign(site, name="Welcome", targeting={"stages_in": ["new_visitor"]})
    shown = {c["campaign_id"] for c in decide(client, site, "visitor-fresh01").json["campaigns"]}
    assert shown == {welcome["id"], survey["id"]}
    answer_survey(client, site, survey, "visitor-fresh01", LIKES)
    after = {c["campaign_id"] for c in decide(client, site, "visitor-fresh01").json["campaigns"]}
    assert welcome["id"] not in after


def test_completing_a_stage_survey_makes_next_stage_popup_eligible(client, site, make_campaign):
    emotional_survey = loyalty_campaign(
        make_campaign, site, name="For customers", targeting={"stages_in": ["customer"]}
    )
    referral = make_campaign(site, name="Referral", targeting={"stages_in": ["advocate"]})
    key = "visitor-ladder01"
    identify(client, site, {"visitor_id": key})
    place_order(site, key)
    before = {c["campaign_id"] for c in decide(client, site, key).json["campaigns"]}
    assert before == {emotional_survey["id"]}

    answer_survey(client, site, emotional_survey, key, LOVES)

    after = {c["campaign_id"] for c in decide(client, site, key).json["campaigns"]}
    assert after == {referral["id"]}


def test_answer_batch_restages_with_fixed_number_of_queries(client, site, make_campaign):
    """Ten visitors' answers in one batch cost no more queries than one visitor's."""
    survey = loyalty_campaign(make_campaign, site)
    variant_id = survey["variants"][0]["id"]

    def batch(keys):
        return [
            event("answer", key, survey["id"], variant_id, step_id=step, value=value)
            for key in keys
            for step, value in LOVES.items()
        ]

    def queries_for(keys):
        for key in keys:
            decide(client, site, key)
        with statements_sent() as sent:
            assert send_events(client, site, batch(keys)).status_code == 202
        return len(sent)

    one = queries_for(["visitor-solo0001"])
    ten = queries_for([f"visitor-many{i:04d}" for i in range(10)])
    assert ten <= one
    assert visitor(site, "visitor-many0009").stage == "advocate"


def test_default_stages_are_listed_and_replaced_with_restaging(admin, client, site, make_campaign):
    listed = admin.get(f"/api/v1/admin/sites/{site['id']}/funnel/stages")
    assert [s["key"] for s in listed.json["stages"]] == [
        "new_visitor",
        "customer",
        "repeat_customer",
        "emotional",
        "intentional",
        "advocate",
    ]
    survey = loyalty_campaign(make_campaign, site)
    answer_survey(client, site, survey, "visitor-restage", LIKES)
    assert visitor(site, "visitor-restage").stage == "emotional"

    stages = [
        {"key": "everyone", "name": "Everyone", "rule": {}},
        {"key": "fans", "name": "Fans", "rule": {"score": "emotional", "gte": 4.5}},
        {"key": "gold", "name": "Gold", "rule": {"attribute": "plan", "equals": "gold"}},
    ]
    response = admin.put(f"/api/v1/admin/sites/{site['id']}/funnel/stages", json={"stages": stages})
    assert response.status_code == 200, response.json
    assert response.json == {"stages": stages}
    assert visitor(site, "visitor-restage").stage == "everyone"
    assert history(site, "visitor-restage")[-1] == ("emotional", "everyone", "rules")

    identify(client, site, {"visitor_id": "visitor-restage", "attributes": {"plan": "gold"}})
    assert visitor(site, "visitor-restage").stage == "gold"
    assert history(site, "visitor-restage")[-1] == ("everyone", "gold", "identify")


@pytest.mark.parametrize(
    ("stages", "field"),
    [
        ([], "stages"),
        ([{"name": "No key", "rule": {}}], "stages.0.key"),
        ([{"key": "a b", "name": "Bad key"}], "stages.0.key"),
        ([{"key": "a", "name": "A"}, {"key": "a", "name": "Again"}], "stages.1.key"),
        ([{"key": "a", "name": "A", "rule": {"score": "Emo!", "gte": 1}}], "stages.0.rule.score"),
        (
            [{"key": "a", "name": "A", "rule": {"score": "emotional", "gte": "4"}}],
            "stages.0.rule.gte",
        ),
        ([{"key": "a", "name": "A", "rule": {"orders": {"more": 1}}}], "stages.0.rule.orders.more"),
        (
            [{"key": "a", "name": "A", "rule": {"all": [{}, {"spent": {"gte": None}}]}}],
            "stages.0.rule.all.1.spent.gte",
        ),
        ([{"key": "a", "name": "A", "rule": {"not": {"bogus": 1}}}], "stages.0.rule.not"),
        (
            [{"key": "a", "name": "A", "rule": {"score": "x", "orders": {"gte": 1}}}],
            "stages.0.rule",
        ),
        ([{"key": "a", "name": "A", "rule": {"attribute": "plan", "in": []}}], "stages.0.rule.in"),
        ([{"key": "a", "name": "A", "rule": ["all"]}], "stages.0.rule"),
    ],
)
def test_invalid_stages_answer_400_naming_the_field(admin, site, stages, field):
    response = admin.put(f"/api/v1/admin/sites/{site['id']}/funnel/stages", json={"stages": stages})
    assert response.status_code == 400
    assert field in response.json["error"]["fields"], response.json


def test_stages_of_unknown_site_is_404(admin):
    assert admin.get("/api/v1/admin/sites/999/funnel/stages").status_code == 404


def test_visitor_funnel_shows_complete_history_in_order(admin, client, site, make_campaign):
    survey = loyalty_campaign(make_campaign, site)
    key = "visitor-timeline"
    identify(client, site, {"visitor_id": key, "customer_id": "c-42"})
    place_order(site, key, "15.00")
    answer_survey(client, site, survey, key, LOVES)

    response = admin.get(f"/api/v1/admin/sites/{site['id']}/visitors/{key}/funnel")

    assert response.status_code == 200, response.json
    body = response.json
    assert (body["stage"], body["customer_id"], body["order_count"]) == ("advocate", "c-42", 1)
    assert body["total_spent"] == "15.00"
    assert [(c["from_stage"], c["to_stage"], c["cause"]) for c in body["history"]] == [
        (None, "new_visitor", "identify"),
        ("new_visitor", "customer", "order"),
        ("customer", "advocate", "answer"),
    ]
    times = [c["changed_at"] for c in body["history"]]
    assert times == sorted(times)
    # The chain is unbroken: each change starts where the previous one ended.
    assert all(a["to_stage"] == b["from_stage"] for a, b in pairwise(body["history"]))


def test_merged_visitor_funnel_ends_with_leaving_and_names_survivor(admin, client, site):
    identify(client, site, {"visitor_id": "visitor-keeper01", "customer_id": "c-8"})
    identify(client, site, {"visitor_id": "visitor-goner001"})
    identify(client, site, {"visitor_id": "visitor-goner001", "customer_id": "c-8"})

    body = admin.get(f"/api/v1/admin/sites/{site['id']}/visitors/visitor-goner001/funnel").json

    assert (body["merged_into"], body["stage"]) == ("visitor-keeper01", None)
    assert [(c["from_stage"], c["to_stage"]) for c in body["history"]] == [
        (None, "new_visitor"),
        ("new_visitor", None),
    ]


@pytest.mark.parametrize(
    ("visitor_key", "status"), [("short", 400), ("visitor-nobody01", 404), ("a" * 65, 400)]
)
def test_visitor_funnel_of_bad_or_unknown_visitor_names_the_field(admin, site, visitor_key, status):
    response = admin.get(f"/api/v1/admin/sites/{site['id']}/visitors/{visitor_key}/funnel")
    assert response.status_code == status
    assert "visitor_id" in response.json["error"]["fields"]


def test_order_restages_with_fixed_number_of_queries(client, site):
    """An order's funnel work is a constant handful of statements, however many orders before."""

    def statements_for_order(key):
        with statements_sent() as sent:
            place_order(site, key, "10.00")
        return len(sent)

    identify(client, site, {"visitor_id": "visitor-counted1"})
    first = statements_for_order("visitor-counted1")
    for _ in range(5):
        place_order(site, "visitor-counted1", "1.00")
    later = statements_for_order("visitor-counted1")
    assert later <= first
    assert visitor(site, "visitor-counted1").order_count == 7
