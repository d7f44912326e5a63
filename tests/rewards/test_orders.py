"""The orders webhook: signed, idempotent by order id, redeems coupons, counts conversions."""

import json

import pytest
from sqlalchemy import func, select

from tests.helpers import decide, event, post_public, send_events
from tests.rewards.conftest import pool_slice, slice_
from tests.rewards.helpers import decided_spin, post_order, signature
from widget_server.extensions import db
from widget_server.models import CouponCode, Order, Visitor
from widget_server.services.promotion.metrics import campaign_figures

ORDER = {"order_id": "1001", "total": 59.9, "currency": "EUR"}


@pytest.fixture
def shop(make_site, make_pool, make_wheel):
    """A site whose wheel always lands on a pool slice of three codes."""
    site = make_site()
    pool = make_pool(site, codes=["SAVE-1", "SAVE-2", "SAVE-3"])
    wheel = make_wheel(site, [pool_slice("10% off", 1, pool["id"]), slice_("No", 0)])
    return site, wheel


def won_code(client, site, wheel, visitor_id="visitor-0001", impression=True):
    variant_id = wheel["variants"][0]["id"]
    assert decide(client, site, visitor_id).status_code == 200
    if impression:
        shown = event("impression", visitor_id, wheel["id"], variant_id)
        assert send_events(client, site, [shown]).status_code == 202
    return decided_spin(client, site, wheel["id"], visitor_id).json["code"]


def visitor(key):
    return db.session.scalar(select(Visitor).where(Visitor.visitor_key == key))


def order_count():
    return db.session.scalar(select(func.count()).select_from(Order))


@pytest.mark.parametrize(
    "header",
    [False, "sha256=" + "0" * 64, "deadbeef", "sha256="],
    ids=["missing", "wrong", "no-scheme", "empty"],
)
def test_unsigned_or_badly_signed_order_is_401(client, shop, header):
    site, _ = shop
    response = post_order(client, site, ORDER, header=header)
    assert response.status_code == 401
    assert "X-Funnelcake-Signature" in response.json["error"]["fields"]
    assert order_count() == 0


def test_order_signed_with_another_sites_secret_is_401(client, shop, make_site):
    site, _ = shop
    other = make_site("Other")
    assert post_order(client, site, ORDER, secret=other["secret"]).status_code == 401


def test_signature_covers_the_exact_body(client, shop):
    site, _ = shop
    signed = json.dumps(ORDER).encode()
    tampered = json.dumps({**ORDER, "total": 0.01}).encode()
    response = post_order(
        client, site, None, raw=tampered, header=signature(site["secret"], signed)
    )
    assert response.status_code == 401


def test_order_links_visitor_and_updates_their_figures(client, shop):
    site, _ = shop
    decide(client, site, "visitor-0001")
    response = post_order(
        client, site, {**ORDER, "visitor_id": "visitor-0001", "customer_id": "c-1"}
    )
    assert response.status_code == 201, response.json
    second = post_order(client, site, {**ORDER, "order_id": "1002", "visitor_id": "visitor-0001"})
    assert second.status_code == 201
    buyer = visitor("visitor-0001")
    assert (buyer.order_count, float(buyer.total_spent)) == (2, 119.8)
    stored = db.session.scalar(select(Order).where(Order.order_ref == "1001"))
    assert (stored.visitor_id, stored.customer_id, stored.currency) == (buyer.id, "c-1", "EUR")


def test_order_links_by_customer_id_of_an_identified_visitor(client, shop):
    site, _ = shop
    decide(client, site, "visitor-0001")
    identified = post_public(
        client, site, "identify", {"visitor_id": "visitor-0001", "customer_id": "cust-9"}
    )
    assert identified.status_code == 200
    assert post_order(client, site, {**ORDER, "customer_id": "cust-9"}).status_code == 201
    assert visitor("visitor-0001").order_count == 1


def test_replayed_order_is_409_duplicate_and_changes_nothing(client, shop):
    site, _ = shop
    decide(client, site, "visitor-0001")
    order = {**ORDER, "visitor_id": "visitor-0001"}
    assert post_order(client, site, order).status_code == 201
    # Same content, other formatting and key order: still the same order.
    reordered = {
        "currency": "EUR",
        "total": "59.90",
        "order_id": "1001",
        "visitor_id": "visitor-0001",
        "coupon_code": None,
    }
    replay = json.dumps(reordered, indent=2).encode()
    response = post_order(client, site, None, raw=replay)
    assert response.status_code == 409
    assert response.json["error"]["code"] == "duplicate_order"
    assert "order_id" in response.json["error"]["fields"]
    assert order_count() == 1
    assert visitor("visitor-0001").order_count == 1


def test_same_order_id_with_another_body_is_409(client, shop):
    site, _ = shop
    assert post_order(client, site, ORDER).status_code == 201
    response = post_order(client, site, {**ORDER, "total": 10})
    assert response.status_code == 409
    assert "order_id" in response.json["error"]["fields"]


def test_unknown_coupon_code_is_422_and_stores_nothing(client, shop):
    site, wheel = shop
    won_code(client, site, wheel)
    response = post_order(client, site, {**ORDER, "coupon_code": "SAVE-GUESSED"})
    assert response.status_code == 422
    assert "coupon_code" in response.json["error"]["fields"]
    assert order_count() == 0


def test_redeemed_coupon_is_marked_and_counts_for_the_variant_that_gave_it(client, shop):
    site, wheel = shop
    variant_id = wheel["variants"][0]["id"]
    code = won_code(client, site, wheel)
    # The shop does not know the visitor id: the coupon leads to the visitor who won it.
    response = post_order(client, site, {**ORDER, "coupon_code": code})
    assert response.status_code == 201, response.json
    assert {
        "metric": "coupon_redemption",
        "campaign_id": wheel["id"],
        "variant_id": variant_id,
    } in (response.json["conversions"])
    coupon = db.session.scalar(select(CouponCode).where(CouponCode.code == code))
    assert coupon.status == "redeemed"
    assert coupon.redeemed_at is not None
    assert (coupon.campaign_id, coupon.variant_id) == (wheel["id"], variant_id)
    stored = db.session.scalar(select(Order))
    assert (stored.coupon_id, stored.visitor_id) == (coupon.id, coupon.visitor_id)
    redemption = campaign_figures(wheel["id"], "coupon_redemption")[variant_id]
    assert (redemption.visitors, redemption.conversions) == (1, 1)
    revenue = campaign_figures(wheel["id"], "revenue")[variant_id]
    assert revenue.value_sum == pytest.approx(59.9)


def test_code_already_redeemed_by_another_order_is_409(client, shop):
    site, wheel = shop
    code = won_code(client, site, wheel)
    assert post_order(client, site, {**ORDER, "coupon_code": code}).status_code == 201
    response = post_order(client, site, {**ORDER, "order_id": "1002", "coupon_code": code})
    assert response.status_code == 409
    assert "coupon_code" in response.json["error"]["fields"]
    assert order_count() == 1


def test_redeemed_code_is_never_handed_out_again(client, make_site, make_pool, make_wheel):
    site = make_site()
    pool = make_pool(site, codes=["ONLY-1"])
    wheel = make_wheel(site, [pool_slice("10%", 1, pool["id"]), slice_("No", 0)])
    # Used in the shop before any spin (a leaked code): redeemed, so no visitor gets it later.
    assert post_order(client, site, {**ORDER, "coupon_code": "ONLY-1"}).status_code == 201
    assert decided_spin(client, site, wheel["id"]).json["code"] is None


def test_fixed_wheel_code_is_accepted_and_counted(client, make_site, make_wheel):
    site = make_site()
    free = slice_("Free shipping", 1, {"type": "code", "code": "FREESHIP"})
    wheel = make_wheel(site, [free, slice_("No", 0)])
    variant_id = wheel["variants"][0]["id"]
    decide(client, site, "visitor-0001")
    send_events(client, site, [event("impression", "visitor-0001", wheel["id"], variant_id)])
    decided_spin(client, site, wheel["id"])
    order = {**ORDER, "visitor_id": "visitor-0001", "coupon_code": "FREESHIP"}
    response = post_order(client, site, order)
    assert response.status_code == 201, response.json
    assert campaign_figures(wheel["id"], "coupon_redemption")[variant_id].conversions == 1


@pytest.mark.parametrize(
    "change, field",
    [
        ({"total": -1}, "total"),
        ({"total": "abc"}, "total"),
        ({"currency": "eur"}, "currency"),
        ({"order_id": ""}, "order_id"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"created_at": "1999-12-31T23:59:59Z"}, "created_at"),
        ({"created_at": "0001-01-01T00:00:00+01:00"}, "created_at"),  # before year 1 in UTC
        ({"visitor_id": "x"}, "visitor_id"),
        ({"email": "not an e-mail"}, "email"),
        ({"slice_index": 1}, "slice_index"),
    ],
)
def test_invalid_order_is_400_naming_the_field(client, shop, change, field):
    site, _ = shop
    response = post_order(client, site, {**ORDER, **change})
    assert response.status_code == 400
    assert field in response.json["error"]["fields"]


def test_orders_ignore_browser_origin_rules_and_send_no_cors_headers(client, shop):
    site, _ = shop
    body = json.dumps(ORDER).encode()
    response = client.post(
        f"/api/v1/sites/{site['site_key']}/orders",
        data=body,
        content_type="application/json",
        headers={
            "Origin": "https://not-allowed.example",
            "X-Funnelcake-Signature": signature(site["secret"], body),
        },
    )
    assert response.status_code == 201
    assert "Access-Control-Allow-Origin" not in response.headers


def test_unknown_site_key_is_404(client):
    response = client.post(
        "/api/v1/sites/pk_nope/orders",
        data=b"{}",
        headers={"X-Funnelcake-Signature": "sha256=00"},
    )
    assert response.status_code == 404


def test_fixed_wheel_code_counts_for_each_visitor_who_won_it(client, make_site, make_wheel):
    site = make_site()
    free = slice_("Free shipping", 1, {"type": "code", "code": "FREESHIP"})
    wheel = make_wheel(site, [free, slice_("No", 0)])
    variant_id = wheel["variants"][0]["id"]
    for number, key in enumerate(["visitor-0001", "visitor-0002"], start=1):
        assert won_code(client, site, wheel, key) == "FREESHIP"
        order = {**ORDER, "order_id": str(number), "visitor_id": key, "coupon_code": "FREESHIP"}
        response = post_order(client, site, order)
        assert response.status_code == 201, response.json
        assert response.json["conversions"][0] == {
            "metric": "coupon_redemption",
            "campaign_id": wheel["id"],
            "variant_id": variant_id,
        }
    assert campaign_figures(wheel["id"], "coupon_redemption")[variant_id].conversions == 2


def test_fixed_wheel_code_used_by_a_visitor_who_did_not_win_it_counts_no_redemption(
    client, make_site, make_wheel
):
    site = make_site()
    free = slice_("Free shipping", 1, {"type": "code", "code": "FREESHIP"})
    wheel = make_wheel(site, [free, slice_("No", 0)])
    variant_id = wheel["variants"][0]["id"]
    won_code(client, site, wheel, "visitor-0001")
    decide(client, site, "visitor-0002")  # assigned and shown, but never spun
    shown = event("impression", "visitor-0002", wheel["id"], variant_id)
    send_events(client, site, [shown])
    order = {**ORDER, "visitor_id": "visitor-0002", "coupon_code": "FREESHIP"}
    response = post_order(client, site, order)
    assert response.status_code == 201, response.json
    assert [c["metric"] for c in response.json["conversions"]] == ["revenue"]
    assert campaign_figures(wheel["id"], "coupon_redemption")[variant_id].conversions == 0


def test_code_won_before_a_merge_redeems_for_the_customers_visitor(client, shop):
    """identify merged the winner into the customer's first visitor: the order goes there."""
    site, wheel = shop
    variant_id = wheel["variants"][0]["id"]
    decide(client, site, "visitor-laptop1")
    identify = {"visitor_id": "visitor-laptop1", "customer_id": "cust-1"}
    assert post_public(client, site, "identify", identify).status_code == 200
    code = won_code(client, site, wheel, "visitor-phone01")
    identify = {"visitor_id": "visitor-phone01", "customer_id": "cust-1"}
    assert post_public(client, site, "identify", identify).status_code == 200

    response = post_order(client, site, {**ORDER, "coupon_code": code})
    assert response.status_code == 201, response.json
    survivor = visitor("visitor-laptop1")
    assert db.session.scalar(select(Order.visitor_id)) == survivor.id
    assert (survivor.order_count, visitor("visitor-phone01").order_count) == (1, 0)
    assert response.json["customer_id"] == "cust-1"
    redemption = campaign_figures(wheel["id"], "coupon_redemption")[variant_id]
    assert (redemption.visitors, redemption.conversions) == (1, 1)


def test_a_guest_order_links_to_the_visitor_whose_spin_gave_its_email(
    client, make_site, make_wheel
):
    site = make_site()
    capture = {"enabled": True, "required": True}
    free = slice_("Free shipping", 1, {"type": "code", "code": "FREESHIP"})
    wheel = make_wheel(site, [free, slice_("No", 0)], email_capture=capture)
    spun = decided_spin(client, site, wheel["id"], "visitor-0001", email="Ann+wheel@Example.com")
    assert spun.status_code == 200, spun.json
    response = post_order(client, site, {**ORDER, "email": "ann@example.com"})
    assert response.status_code == 201, response.json
    assert visitor("visitor-0001").order_count == 1


def test_an_email_links_nothing_when_the_order_names_its_visitor(client, make_site, make_wheel):
    site = make_site()
    capture = {"enabled": True, "required": True}
    wheel = make_wheel(site, [slice_("No", 1)], email_capture=capture)
    decided_spin(client, site, wheel["id"], "visitor-0001", email="ann@example.com")
    decide(client, site, "visitor-0002")
    order = {**ORDER, "visitor_id": "visitor-0002", "email": "ann@example.com"}
    assert post_order(client, site, order).status_code == 201
    assert (visitor("visitor-0001").order_count, visitor("visitor-0002").order_count) == (0, 1)
