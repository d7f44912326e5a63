"""Won codes that expire: the slice's ``expires_in_minutes``, the expiry the server stores with
the spin and answers unchanged, and the orders webhook refusing to count a code after it.

Time is tested with aged rows (``tests.helpers.time_passes``): the code is won, the clock moves
past (or just short of) the expiry, and the order arrives on the real clock."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.helpers import decide, event, send_events, time_passes
from tests.rewards.conftest import pool_slice, slice_, wheel_content
from tests.rewards.helpers import decided_spin, post_order, spin
from widget_server.extensions import db
from widget_server.models import CouponCode, Order, Spin, Visitor
from widget_server.services.promotion.metrics import campaign_figures

ORDER = {"order_id": "2001", "total": 40, "currency": "EUR"}
MINUTES = 30


def expiring(slice_dict, minutes=MINUTES):
    return {**slice_dict, "expires_in_minutes": minutes}


@pytest.fixture
def shop(make_site, make_pool, make_wheel):
    """A wheel that always lands on a pool slice whose codes are valid for 30 minutes."""
    site = make_site()
    pool = make_pool(site, codes=["SOON-1", "SOON-2"])
    wheel = make_wheel(site, [expiring(pool_slice("10% off", 1, pool["id"])), slice_("No", 0)])
    return site, wheel


def parsed(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


def won_after_impression(client, site, wheel) -> str:
    """The code a visitor who saw the wheel won (the A/B figures count exposed visitors)."""
    assert decide(client, site, "visitor-0001").status_code == 200
    shown = event("impression", "visitor-0001", wheel["id"], wheel["variants"][0]["id"])
    assert send_events(client, site, [shown]).status_code == 202
    return decided_spin(client, site, wheel["id"]).json["code"]


def redemptions(wheel) -> int:
    """The wheel variant's ``coupon_redemption`` conversions (none before an exposure)."""
    figures = campaign_figures(wheel["id"], "coupon_redemption").get(wheel["variants"][0]["id"])
    return figures.conversions if figures else 0


def stored_spin() -> Spin:
    return db.session.scalar(select(Spin))


def test_spin_answers_the_expiry_the_slice_sets_and_stores_it(client, shop):
    site, wheel = shop
    before = datetime.now(UTC).replace(microsecond=0)
    answer = decided_spin(client, site, wheel["id"]).json
    expires_at = parsed(answer["expires_at"])
    assert before + timedelta(minutes=MINUTES) <= expires_at
    assert expires_at <= datetime.now(UTC) + timedelta(minutes=MINUTES)
    coupon = db.session.scalar(select(CouponCode).where(CouponCode.code == answer["code"]))
    assert stored_spin().expires_at.replace(microsecond=0) == expires_at
    assert coupon.expires_at == stored_spin().expires_at


def test_a_code_without_expiry_answers_null(client, make_site, make_wheel):
    site = make_site()
    wheel = make_wheel(site, [slice_("Free", 1, {"type": "code", "code": "FREE"}), slice_("No", 0)])
    assert decided_spin(client, site, wheel["id"]).json["expires_at"] is None


def test_an_empty_pool_falls_back_to_no_prize_without_expiry(
    client, make_site, make_pool, make_wheel
):
    site = make_site()
    pool = make_pool(site, name="Empty")
    wheel = make_wheel(site, [expiring(pool_slice("10%", 1, pool["id"])), slice_("No", 0)])
    answer = decided_spin(client, site, wheel["id"]).json
    assert (answer["code"], answer["expires_at"]) == (None, None)


def test_repeated_spin_later_answers_the_first_expiry_not_a_new_one(client, shop):
    site, wheel = shop
    first = decided_spin(client, site, wheel["id"]).json
    time_passes(timedelta(minutes=20))
    again = spin(client, site, wheel["id"]).json
    assert again["repeated"] is True
    # the aged spin's expiry, 20 minutes nearer: about 10 minutes are left, not 30 again
    assert parsed(again["expires_at"]) == parsed(first["expires_at"]) - timedelta(minutes=20)
    left = parsed(again["expires_at"]) - datetime.now(UTC)
    assert timedelta(minutes=9) < left <= timedelta(minutes=10)


@pytest.mark.parametrize("field", ["expires_at", "expires_in_minutes"])
def test_the_browser_cannot_set_or_extend_the_expiry(client, shop, field):
    site, wheel = shop
    response = decided_spin(client, site, wheel["id"], **{field: "2099-01-01T00:00:00Z"})
    assert response.status_code == 400
    assert field in response.json["error"]["fields"]
    assert stored_spin() is None


@pytest.mark.parametrize(
    "value, reward, message",
    [
        (0, {"type": "code", "code": "X"}, "Must be 1 to 10,080 minutes."),
        (10_081, {"type": "code", "code": "X"}, "Must be 1 to 10,080 minutes."),
        (1.5, {"type": "code", "code": "X"}, "Not a valid integer."),
        ("30", {"type": "code", "code": "X"}, "Not a valid integer."),
        (30, {"type": "none"}, "A slice without a code has nothing to expire."),
    ],
)
def test_invalid_expiry_is_400_naming_the_slice_field(admin, make_site, value, reward, message):
    site = make_site()
    slices = [{**slice_("Prize", 1, reward), "expires_in_minutes": value}, slice_("No", 0)]
    body = {
        "name": "Wheel",
        "kind": "wheel",
        "trigger": {"type": "immediate"},
        "variants": [{"name": "A", "is_control": True, "content": wheel_content(slices)}],
    }
    response = admin.post(f"/api/v1/admin/sites/{site['id']}/campaigns", json=body)
    assert response.status_code == 400
    fields = response.json["error"]["fields"]
    assert fields == {"variants.0.content.slices.0.expires_in_minutes": [message]}


def test_order_after_the_expiry_is_recorded_but_redeems_nothing(client, shop):
    site, wheel = shop
    code = won_after_impression(client, site, wheel)
    time_passes(timedelta(minutes=MINUTES, seconds=1))
    response = post_order(client, site, {**ORDER, "coupon_code": code})
    assert response.status_code == 201, response.json
    coupon = response.json["coupon"]
    assert (coupon["code"], coupon["accepted"], coupon["reason"]) == (code, False, "expired")
    assert parsed(coupon["expires_at"]) < datetime.now(UTC)
    assert "coupon_redemption" not in [c["metric"] for c in response.json["conversions"]]
    order = db.session.scalar(select(Order))
    assert (order.coupon_code, order.coupon_id) == (code, None)  # kept, as sent, not linked
    stored = db.session.scalar(select(CouponCode).where(CouponCode.code == code))
    assert (stored.status, stored.redeemed_at) == ("assigned", None)
    assert db.session.scalar(select(Visitor.order_count)) == 1  # the order itself counts
    assert redemptions(wheel) == 0
    # a second order with the dead code is refused the same way, not a 409
    again = post_order(client, site, {**ORDER, "order_id": "2002", "coupon_code": code})
    assert again.status_code == 201 and again.json["coupon"]["reason"] == "expired"


def test_order_just_before_the_expiry_redeems(client, shop):
    site, wheel = shop
    code = won_after_impression(client, site, wheel)
    time_passes(timedelta(minutes=MINUTES - 1))
    response = post_order(client, site, {**ORDER, "coupon_code": code})
    assert response.status_code == 201, response.json
    assert response.json["coupon"]["accepted"] is True
    assert response.json["coupon"]["reason"] is None
    assert response.json["conversions"][0]["metric"] == "coupon_redemption"
    stored = db.session.scalar(select(CouponCode).where(CouponCode.code == code))
    assert stored.status == "redeemed"
    assert redemptions(wheel) == 1


def test_an_order_made_before_the_expiry_counts_though_reported_after_it(client, shop):
    """The shop's ``created_at`` (never later than now) is when the code was used."""
    site, wheel = shop
    code = decided_spin(client, site, wheel["id"]).json["code"]
    time_passes(timedelta(minutes=MINUTES + 60))
    made = stored_spin().expires_at - timedelta(minutes=1)
    order = {**ORDER, "coupon_code": code, "created_at": made.isoformat()}
    response = post_order(client, site, order)
    assert response.json["coupon"]["accepted"] is True


def test_a_fixed_code_won_with_an_expiry_is_refused_after_it(client, make_site, make_wheel):
    site = make_site()
    free = expiring(slice_("Free shipping", 1, {"type": "code", "code": "FREESHIP"}), 5)
    wheel = make_wheel(site, [free, slice_("No", 0)])
    decided_spin(client, site, wheel["id"])
    time_passes(timedelta(minutes=6))
    order = {**ORDER, "visitor_id": "visitor-0001", "coupon_code": "FREESHIP"}
    response = post_order(client, site, order)
    assert response.status_code == 201, response.json
    assert response.json["coupon"]["reason"] == "expired"
    assert [c["metric"] for c in response.json["conversions"]] == ["revenue"]


def test_order_answer_says_why_a_code_did_not_redeem_or_that_there_was_none(
    client, make_site, make_wheel
):
    site = make_site()
    wheel = make_wheel(site, [slice_("Free", 1, {"type": "code", "code": "FREE"}), slice_("No", 0)])
    decided_spin(client, site, wheel["id"], "visitor-0001")
    stranger = {**ORDER, "visitor_id": "visitor-0002", "coupon_code": "FREE"}
    refused = post_order(client, site, stranger).json["coupon"]
    assert refused == {
        "code": "FREE",
        "accepted": False,
        "reason": "not_won_by_buyer",
        "expires_at": None,
    }
    plain = post_order(client, site, {**ORDER, "order_id": "2003"})
    assert plain.json["coupon"] is None
