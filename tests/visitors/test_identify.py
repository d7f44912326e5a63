"""Identify: customer links, e-mail consent, merging one customer's visitors."""

from sqlalchemy import func, select

from tests.funnel.helpers import (
    answer_survey,
    history,
    identify,
    loyalty_campaign,
    place_order,
    visitor,
)
from tests.helpers import decide, event, send_events
from widget_server.extensions import db
from widget_server.models import Assignment, Order, Response


def test_identify_links_customer_and_keeps_email_only_with_consent(client, make_site):
    site = make_site()
    answer = identify(
        client,
        site,
        {"visitor_id": "visitor-anna001", "customer_id": "c-1", "email": "a@shop.example"},
    )
    assert answer.status_code == 200, answer.json
    assert answer.json == {"visitor_id": "visitor-anna001", "stage": "new_visitor"}
    found = visitor(site, "visitor-anna001")
    assert (found.customer_id, found.email) == ("c-1", None)

    identify(
        client,
        site,
        {"visitor_id": "visitor-anna001", "email": "a@shop.example", "email_consent": True},
    )
    assert visitor(site, "visitor-anna001").email == "a@shop.example"


def test_identify_merges_newer_visitor_into_customers_first(client, make_site, make_campaign):
    site = make_site()
    survey = loyalty_campaign(make_campaign, site)
    identify(client, site, {"visitor_id": "visitor-laptop1", "customer_id": "c-7"})
    place_order(site, "visitor-laptop1", "30.00")
    # A second device: answers the survey and buys before logging in.
    decide(client, site, "visitor-phone01")
    answer_survey(client, site, survey, "visitor-phone01", {"emotional": 5, "intentional": 5})
    place_order(site, "visitor-phone01", "12.50")
    assert visitor(site, "visitor-phone01").stage == "intentional"

    answer = identify(
        client,
        site,
        {"visitor_id": "visitor-phone01", "customer_id": "c-7", "attributes": {"plan": "gold"}},
    )

    assert answer.json == {"visitor_id": "visitor-laptop1", "stage": "intentional"}
    survivor = visitor(site, "visitor-laptop1")
    merged = visitor(site, "visitor-phone01")
    assert merged.merged_into_id == survivor.id and merged.stage is None
    assert (survivor.order_count, str(survivor.total_spent)) == (2, "42.50")
    assert survivor.scores == {"emotional": 5.0, "intentional": 5.0}
    assert survivor.attributes == {"plan": "gold"}
    owners = db.session.scalars(select(Order.visitor_id)).all()
    assert owners == [survivor.id, survivor.id]
    assert db.session.scalar(select(Response.visitor_id)) == survivor.id
    assert db.session.scalar(select(Assignment.visitor_id)) == survivor.id
    assert history(site, "visitor-phone01")[-1] == ("intentional", None, "identify")
    assert history(site, "visitor-laptop1")[-1] == ("customer", "intentional", "identify")


def test_merged_visitor_key_keeps_working_for_decide_and_events(client, make_site, make_campaign):
    site = make_site()
    survey = loyalty_campaign(make_campaign, site)
    identify(client, site, {"visitor_id": "visitor-first01", "customer_id": "c-9"})
    identify(client, site, {"visitor_id": "visitor-second1", "customer_id": "c-9"})
    offered = decide(client, site, "visitor-second1")
    assert offered.status_code == 200
    assert offered.json["visitor_id"] == "visitor-second1"
    assert [c["campaign_id"] for c in offered.json["campaigns"]] == [survey["id"]]

    answer_survey(client, site, survey, "visitor-second1", {"emotional": 4})

    survivor = visitor(site, "visitor-first01")
    assert survivor.scores == {"emotional": 4.0}
    assert survivor.stage == "emotional"
    assert db.session.scalar(select(func.count()).select_from(Response)) == 1
    # Completed through the merged key: the customer is not asked again on any device.
    assert decide(client, site, "visitor-first01").json["campaigns"] == []
    identify(client, site, {"visitor_id": "visitor-second1", "attributes": {"vip": True}})
    assert visitor(site, "visitor-first01").attributes == {"vip": True}


def test_merging_folds_both_responses_to_one_survey_latest_answer_wins(
    client, make_site, make_campaign
):
    site = make_site()
    survey = loyalty_campaign(make_campaign, site)
    variant_id = survey["variants"][0]["id"]
    old = event("answer", "visitor-older01", survey["id"], variant_id, step_id="emotional", value=1)
    old["ts"] = "2026-01-01T10:00:00+00:00"
    new = event("answer", "visitor-newer01", survey["id"], variant_id, step_id="emotional", value=5)
    new["ts"] = "2026-01-02T10:00:00+00:00"
    act = event("answer", "visitor-older01", survey["id"], variant_id, step_id="action", value="no")
    act["ts"] = "2026-01-01T10:00:00+00:00"
    for key in ("visitor-older01", "visitor-newer01"):
        assert decide(client, site, key).json["campaigns"]
    assert send_events(client, site, [old, act, new]).status_code == 202
    identify(client, site, {"visitor_id": "visitor-older01", "customer_id": "c-3"})
    identify(client, site, {"visitor_id": "visitor-newer01", "customer_id": "c-3"})

    survivor = visitor(site, "visitor-older01")
    responses = db.session.scalars(select(Response)).all()
    assert len(responses) == 1 and responses[0].visitor_id == survivor.id
    assert {k: v["value"] for k, v in responses[0].answers.items()} == {
        "emotional": 5,
        "action": "no",
    }
    assert survivor.scores == {"action": 1.0, "emotional": 5.0}


def test_identify_with_another_customer_id_is_a_conflict(client, make_site):
    site = make_site()
    identify(client, site, {"visitor_id": "visitor-shared1", "customer_id": "c-1"})
    answer = identify(client, site, {"visitor_id": "visitor-shared1", "customer_id": "c-2"})
    assert answer.status_code == 409
    assert "customer_id" in answer.json["error"]["fields"]


def test_identify_claims_orders_reported_with_customer_id_only(client, make_site):
    site = make_site()
    place_order(site, None, "19.99", customer_id="c-5")
    place_order(site, None, "5.01", customer_id="c-5")
    answer = identify(client, site, {"visitor_id": "visitor-claims1", "customer_id": "c-5"})
    assert answer.json["stage"] == "repeat_customer"
    assert str(visitor(site, "visitor-claims1").total_spent) == "25.00"


def test_identify_nulls_mean_not_given_and_null_attribute_is_removed(client, make_site):
    site = make_site()
    identify(client, site, {"visitor_id": "visitor-nulls01", "attributes": {"a": 1, "b": "x"}})
    answer = identify(
        client,
        site,
        {"visitor_id": "visitor-nulls01", "customer_id": None, "attributes": {"a": None}},
    )
    assert answer.status_code == 200, answer.json
    assert visitor(site, "visitor-nulls01").attributes == {"b": "x"}


def test_identify_validates_fields_and_origin(client, make_site):
    site = make_site()
    bad = identify(
        client,
        site,
        {"visitor_id": "short", "email": "not-an-email", "attributes": {"bad key": 1}},
    )
    assert bad.status_code == 400
    assert {"visitor_id", "email", "attributes"} <= set(bad.json["error"]["fields"])
    refused = identify(
        client, site, {"visitor_id": "visitor-origin1"}, origin="https://evil.example"
    )
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused.headers
    allowed = identify(client, site, {"visitor_id": "visitor-origin1"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example"


def test_identify_with_consent_false_erases_the_email(client, make_site):
    site = make_site()
    key = "visitor-optout01"
    identify(client, site, {"visitor_id": key, "email": "a@shop.example", "email_consent": True})
    identify(client, site, {"visitor_id": key, "attributes": {"plan": "gold"}})  # not given
    assert visitor(site, key).email == "a@shop.example"

    answer = identify(client, site, {"visitor_id": key, "email_consent": False})

    assert answer.status_code == 200, answer.json
    found = visitor(site, key)
    assert (found.email, found.email_consent) == (None, False)
