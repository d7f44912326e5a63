"""A spin is honoured only for a wheel the server offered the visitor, and events never create
or move an assignment: what a hostile browser can claim through ``events`` and ``spin``."""

import pytest
from sqlalchemy import func, select

from tests.api.helpers import decide, event, send_events
from tests.conftest import survey_content
from tests.rewards.conftest import pool_slice, slice_, wheel_content
from tests.rewards.helpers import spin
from widget_server.extensions import db
from widget_server.models import Assignment, Event, Response, Spin, VariantMetric, Visitor


@pytest.fixture
def cart_wheel(make_site, make_pool, make_campaign):
    """A wheel with two variants (A: a pool code, B: a fixed code) shown on the cart page only."""
    site = make_site()
    pool = make_pool(site, codes=["POOL-1", "POOL-2", "POOL-3"])
    fixed = {"type": "code", "code": "FIXED-B"}
    wheel = make_campaign(
        site,
        kind="wheel",
        name="Wheel",
        targeting={"url_include": ["/cart*"]},
        variants=[
            {
                "name": "A",
                "is_control": True,
                "content": wheel_content([pool_slice("Pool", 1, pool["id"]), slice_("No", 0)]),
            },
            {"name": "B", "content": wheel_content([slice_("Fixed", 1, fixed), slice_("No", 0)])},
        ],
    )
    return site, wheel


def variant_ids(wheel) -> dict[str, int]:
    return {v["name"]: v["id"] for v in wheel["variants"]}


def assignments() -> list[Assignment]:
    db.session.expire_all()
    return db.session.scalars(select(Assignment)).all()


def assignment_of(visitor_key: str) -> Assignment:
    db.session.expire_all()
    return db.session.scalar(
        select(Assignment).join(Visitor).where(Visitor.visitor_key == visitor_key)
    )


def test_impression_for_a_wheel_never_offered_creates_no_assignment_and_no_spin(client, cart_wheel):
    site, wheel = cart_wheel
    chosen = variant_ids(wheel)["B"]
    forged = event("impression", "fresh-visitor-1", wheel["id"], chosen)
    assert send_events(client, site, [forged]).status_code == 202
    assert assignments() == []
    # The event is kept (a 202 is durable) but counts under no variant.
    stored = db.session.scalar(select(Event))
    assert stored.campaign_id == wheel["id"] and stored.variant_id is None
    assert db.session.scalar(select(func.count()).select_from(VariantMetric)) == 0
    refused = spin(client, site, wheel["id"], "fresh-visitor-1")
    assert refused.status_code == 409
    assert "visitor_id" in refused.json["error"]["fields"]
    assert db.session.scalar(select(func.count()).select_from(Spin)) == 0


def test_visitor_decided_on_another_page_cannot_spin_the_cart_wheel(client, cart_wheel):
    site, wheel = cart_wheel
    assert decide(client, site, "visitor-0001", url="https://shop.example/").json["campaigns"] == []
    forged = event("impression", "visitor-0001", wheel["id"], variant_ids(wheel)["B"])
    assert send_events(client, site, [forged]).status_code == 202
    assert assignments() == []
    assert spin(client, site, wheel["id"], "visitor-0001").status_code == 409


def test_impression_naming_another_variant_counts_under_the_assigned_one(client, cart_wheel):
    site, wheel = cart_wheel
    ids = variant_ids(wheel)
    cart = "https://shop.example/cart"
    visitor = next(  # a visitor the server assigned to A
        f"visitor-{i:04d}"
        for i in range(200)
        if decide(client, site, f"visitor-{i:04d}", url=cart).json["campaigns"][0]["variant_id"]
        == ids["A"]
    )
    forged = event("impression", visitor, wheel["id"], ids["B"])
    assert send_events(client, site, [forged]).status_code == 202
    mine = assignment_of(visitor)
    assert mine.variant_id == ids["A"] and mine.impressions == 1
    assert (
        db.session.scalar(select(Event.variant_id).where(Event.event_uuid == forged["id"]))
        == (ids["A"])
    )
    exposed = db.session.execute(
        select(VariantMetric.variant_id, func.sum(VariantMetric.visitors)).group_by(
            VariantMetric.variant_id
        )
    ).all()
    assert dict(exposed).get(ids["B"], 0) == 0 and dict(exposed)[ids["A"]] >= 1
    won = spin(client, site, wheel["id"], visitor)
    assert won.status_code == 200
    assert won.json["variant_id"] == ids["A"] and won.json["code"].startswith("POOL-")


def test_answers_naming_another_variant_are_kept_under_the_assigned_one(
    client, make_site, make_campaign
):
    site = make_site()
    survey = make_campaign(
        site,
        variants=[
            {"name": "A", "is_control": True, "weight": 1, "content": survey_content()},
            {"name": "B", "weight": 0, "content": survey_content()},
        ],
    )
    a_id, b_id = (v["id"] for v in survey["variants"])
    assert decide(client, site).json["campaigns"][0]["variant_id"] == a_id
    answer = event("answer", "visitor-0001", survey["id"], b_id, step_id="q1", value="friend")
    assert send_events(client, site, [answer]).status_code == 202
    assert db.session.scalar(select(Response.variant_id)) == a_id


@pytest.mark.parametrize("exclusion", ["holdout", "sampled_out"])
def test_holdout_and_sampled_out_visitors_cannot_claim_a_variant_or_spin(
    client, make_site, make_wheel, exclusion
):
    site = make_site()
    settings = (
        {"ab": {"holdout_percent": 50}}
        if exclusion == "holdout"
        else {"frequency": {"sampling_percent": 50}}
    )
    wheel = make_wheel(
        site, [slice_("Fixed", 1, {"type": "code", "code": "WIN"}), slice_("No", 0)], **settings
    )
    excluded = next(
        f"visitor-{i:04d}"
        for i in range(200)
        if not decide(client, site, f"visitor-{i:04d}").json["campaigns"]
    )
    variant_id = wheel["variants"][0]["id"]
    forged = [
        event("impression", excluded, wheel["id"], variant_id),
        event("complete", excluded, wheel["id"], variant_id),
    ]
    assert send_events(client, site, forged).status_code == 202
    held = assignment_of(excluded)
    assert held.variant_id is None or held.sampled_out
    assert getattr(held, exclusion) is True
    assert held.impressions == 0 and held.completed_at is None
    refused = spin(client, site, wheel["id"], excluded)
    assert refused.status_code == 409
    assert "visitor_id" in refused.json["error"]["fields"]


@pytest.fixture
def rewarded_survey(make_site, make_wheel, make_campaign):
    """A survey whose thank-you step offers a wheel that is otherwise shown on the cart only."""
    site = make_site()
    wheel = make_wheel(
        site,
        [slice_("Fixed", 1, {"type": "code", "code": "THANKS"}), slice_("No", 0)],
        targeting={"url_include": ["/cart*"]},
    )
    reward = {"campaign_id": wheel["id"], "label": "Spin"}
    content = survey_content(thank_you={"title": "Thanks!", "reward": reward})
    survey = make_campaign(site, variants=[{"name": "A", "is_control": True, "content": content}])
    return site, survey, wheel


def test_reward_wheel_spins_only_after_the_survey_is_completed(client, rewarded_survey):
    site, survey, wheel = rewarded_survey
    offer = decide(client, site).json["campaigns"][0]
    assert offer["reward"]["campaign_id"] == wheel["id"]
    early = spin(client, site, wheel["id"])
    assert early.status_code == 409
    assert "visitor_id" in early.json["error"]["fields"]
    # Answering is not completing.
    answer = event("answer", "visitor-0001", survey["id"], offer["variant_id"], step_id="q1")
    answer["data"]["value"] = "friend"
    send_events(client, site, [answer])
    assert spin(client, site, wheel["id"]).status_code == 409
    send_events(
        client, site, [event("complete", "visitor-0001", survey["id"], offer["variant_id"])]
    )
    won = spin(client, site, wheel["id"])
    assert won.status_code == 200 and won.json["code"] == "THANKS"


def test_completing_a_survey_that_offers_no_wheel_earns_no_spin(
    client, make_site, make_wheel, make_campaign, rewarded_survey
):
    site, _, wheel = rewarded_survey
    plain = make_campaign(site, name="Plain", priority=5)
    offers = {c["campaign_id"]: c for c in decide(client, site).json["campaigns"]}
    done = event("complete", "visitor-0001", plain["id"], offers[plain["id"]]["variant_id"])
    send_events(client, site, [done])
    assert spin(client, site, wheel["id"]).status_code == 409


def test_wheel_offered_by_its_own_targeting_spins_without_the_survey(client, rewarded_survey):
    site, _, wheel = rewarded_survey
    # First earned-only (home page), then offered by the wheel's own targeting (cart page).
    decide(client, site, url="https://shop.example/")
    assert spin(client, site, wheel["id"]).status_code == 409
    cart = decide(client, site, url="https://shop.example/cart").json["campaigns"]
    assert wheel["id"] in [c["campaign_id"] for c in cart]
    won = spin(client, site, wheel["id"])
    assert won.status_code == 200 and won.json["code"] == "THANKS"
