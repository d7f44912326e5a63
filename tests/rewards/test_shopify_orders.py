"""Shopify's own ``orders/create`` webhook, by configuration alone: its unchanged body, signed as
Shopify signs (``X-Shopify-Hmac-Sha256``: the base64 HMAC-SHA256 of the raw body with the
webhook secret), becomes an order with its links, redemptions and conversions.

``tests/fixtures/shopify_orders_create.json`` is Shopify's sample ``orders/create`` payload, the
body its admin's *Send test notification* sends (order ``#9999``, id 820982911946154508, shown in
shopify.dev's webhook reference, API version 2024-07), copied from a public repository that
recorded it (``bakaphp/kanvas-ecosystem-api``, tests/Connectors/Integration/Shopify/OrderTest.php);
only the shop's address in ``order_status_url`` was replaced by ``jsmith.myshopify.com``. It is a
test order (``"test": true``) and a cancelled one; ``shopify_order()`` turns it into a paid real
one, as a store sends for a checkout.
"""

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.helpers import decide, event, post_public, send_events, statements_sent, time_passes
from tests.rewards.conftest import pool_slice, slice_
from tests.rewards.helpers import (
    FIXTURES,
    PLATFORM_SECRETS,
    connect_platform,
    decided_spin,
    fixture,
    platform_signature,
    post_order,
    post_platform,
)
from widget_server.extensions import db
from widget_server.models import CouponCode, Order, PlatformReceipt, Visitor
from widget_server.services.promotion.metrics import campaign_figures

FIXTURE = "shopify_orders_create.json"
MISSING = object()
ORDER_ID = "820982911946154508"
CUSTOMER_ID = "115310627314723954"
VISITOR = "visitor-cart-0001"
#: The sample shop's offset (``created_at`` ends in -04:00).
SHOP_ZONE = timezone(timedelta(hours=-4))


def shopify_order(**changes) -> dict:
    """Shopify's sample order as a real, paid checkout sends it (made now, in the shop's time
    zone), with ``changes``."""
    order = fixture(FIXTURE)
    order.update(test=False, cancelled_at=None, cancel_reason=None, financial_status="paid")
    order["created_at"] = datetime.now(SHOP_ZONE).isoformat()
    order.update(changes)
    return order


def cart_attribute(value) -> list[dict]:
    return [
        {"name": "gift_note", "value": "Happy birthday"},
        {"name": "_funnelcake_visitor", "value": value},
    ]


def send(client, site, order=None, **kwargs):
    return post_platform(client, site, "shopify", order, **kwargs)


def orders() -> list[Order]:
    db.session.expire_all()
    return list(db.session.scalars(select(Order).order_by(Order.id)))


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def visitor(key) -> Visitor | None:
    db.session.expire_all()
    return db.session.scalar(select(Visitor).where(Visitor.visitor_key == key))


@pytest.fixture
def shop(admin, make_site, make_pool, make_wheel):
    """A Shopify site (secret set, carts linked) whose wheel always lands on a pool slice."""
    site = make_site()
    connect_platform(admin, site, "shopify", link_cart=True)
    pool = make_pool(site, codes=["SPIN-AAAA1111", "SPIN-BBBB2222"])
    wheel = make_wheel(site, [pool_slice("10% off", 1, pool["id"]), slice_("No", 0)])
    return site, wheel


def won_code(client, site, wheel, visitor_id=VISITOR) -> str:
    """The pool code a visitor who saw the wheel won (the A/B figures count exposed visitors)."""
    assert decide(client, site, visitor_id).status_code == 200
    shown = event("impression", visitor_id, wheel["id"], wheel["variants"][0]["id"])
    assert send_events(client, site, [shown]).status_code == 202
    return decided_spin(client, site, wheel["id"], visitor_id).json["code"]


# -- the published example and what it maps to ---------------------------------------------------


def test_the_published_sample_is_a_test_order_acknowledged_and_not_stored(client, shop):
    """What the admin's *Send test notification* sends: a 200 (the secret is right), no order."""
    site, _ = shop
    raw = (FIXTURES / FIXTURE).read_bytes()  # signed as recorded, byte for byte
    response = send(client, site, raw=raw)
    assert response.status_code == 200, response.json
    assert response.json["status"] == "ignored"
    assert response.json["reason"] == "test_order"
    assert response.json["order_id"] == ORDER_ID
    assert (count(Order), count(Visitor), count(PlatformReceipt)) == (0, 0, 0)


def test_a_paid_order_is_recorded_with_shopifys_fields(client, shop):
    site, _ = shop
    sample_time = fixture(FIXTURE)["created_at"]
    order = shopify_order(created_at=sample_time)
    response = send(client, site, order, delivery_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
    assert response.status_code == 200, response.json
    assert response.json["status"] == "recorded"
    assert response.json["platform"] == "shopify"
    [stored] = orders()
    assert stored.order_ref == ORDER_ID
    assert stored.total == Decimal("1575.90")
    assert stored.currency == "USD"
    assert stored.customer_id == CUSTOMER_ID
    assert stored.ordered_at == datetime(2024, 6, 26, 16, 33, 21, tzinfo=UTC)  # -04:00 in UTC
    assert stored.coupon_code is None
    assert (response.json["total"], response.json["coupon"]) == ("1575.90", None)
    assert count(PlatformReceipt) == 1


def test_a_guest_checkout_has_no_customer(client, shop):
    site, _ = shop
    response = send(client, site, shopify_order(customer=None))
    assert response.json["status"] == "recorded"
    assert response.json["customer_id"] is None
    assert orders()[0].customer_id is None


def test_a_cancelled_order_is_acknowledged_and_not_stored(client, shop):
    site, _ = shop
    response = send(client, site, shopify_order(cancelled_at="2024-06-26T12:40:00-04:00"))
    assert (response.status_code, response.json["status"]) == (200, "ignored")
    assert response.json["reason"] == "cancelled"
    assert count(Order) == 0


def test_another_topic_sent_here_is_acknowledged_and_not_read(client, shop):
    site, _ = shop
    refund = {"id": 890088186047892319, "order_id": 820982911946154508, "note": "damaged"}
    response = send(client, site, refund, topic="refunds/create")
    assert (response.status_code, response.json["reason"]) == (200, "topic_not_counted")
    assert count(Order) == 0


def test_answers_carry_no_cors_headers(client, shop):
    site, _ = shop
    body = json.dumps(shopify_order()).encode()
    response = client.post(
        f"/api/v1/sites/{site['site_key']}/integrations/shopify/orders",
        data=body,
        content_type="application/json",
        headers={
            "Origin": "https://evil.example",
            "X-Shopify-Hmac-Sha256": platform_signature(PLATFORM_SECRETS["shopify"], body),
        },
    )
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


# -- signatures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        False,
        "",
        "not base64 at all",
        platform_signature("another secret", b"{}"),
        "sha256=" + "0" * 64,
    ],
    ids=["missing", "empty", "garbage", "other-body", "funnelcake-scheme"],
)
def test_a_missing_or_wrong_signature_is_401_and_stores_nothing(client, shop, header):
    site, _ = shop
    response = send(client, site, shopify_order(), signature=header)
    assert response.status_code == 401
    assert "X-Shopify-Hmac-Sha256" in response.json["error"]["fields"]
    assert (count(Order), count(PlatformReceipt)) == (0, 0)


def test_the_signature_covers_the_raw_bytes(client, shop):
    site, _ = shop
    signed = json.dumps(shopify_order()).encode()
    tampered = json.dumps(shopify_order(total_price="0.01")).encode()
    secret = PLATFORM_SECRETS["shopify"]
    response = send(client, site, raw=tampered, signature=platform_signature(secret, signed))
    assert response.status_code == 401
    assert count(Order) == 0


def test_signed_with_the_site_secret_instead_is_401(client, shop):
    site, _ = shop
    response = send(client, site, shopify_order(), secret=site["secret"])
    assert response.status_code == 401


def test_a_site_without_a_shopify_secret_refuses_every_delivery(client, make_site):
    site = make_site()
    response = send(client, site, shopify_order())
    assert response.status_code == 401
    assert "webhook_secret" in response.json["error"]["fields"]["X-Shopify-Hmac-Sha256"][0]
    assert count(Order) == 0


def test_a_removed_secret_refuses_the_next_delivery(client, admin, shop):
    site, _ = shop
    admin.patch(
        f"/api/v1/admin/sites/{site['id']}",
        json={"integrations": {"shopify": {"webhook_secret": None}}},
    )
    assert send(client, site, shopify_order()).status_code == 401


def test_an_unknown_site_key_is_404(client):
    response = send(client, {"site_key": "pk_nope"}, shopify_order())
    assert response.status_code == 404
    assert "site_key" in response.json["error"]["fields"]


# -- replays: 2xx, never a change ----------------------------------------------------------------


def test_the_same_delivery_again_is_200_and_changes_nothing(client, shop):
    site, wheel = shop
    code = won_code(client, site, wheel)
    order = shopify_order(discount_codes=[{"code": code, "amount": "10.00", "type": "percentage"}])
    first = send(client, site, order, delivery_id="delivery-1")
    assert first.json["status"] == "recorded"
    before = (count(Order), count(PlatformReceipt), visitor(VISITOR).order_count)
    again = send(client, site, order, delivery_id="delivery-1")
    assert again.status_code == 200
    assert (again.json["status"], again.json["reason"]) == ("duplicate", "webhook_id")
    assert (
        (count(Order), count(PlatformReceipt), visitor(VISITOR).order_count) == before == (1, 1, 1)
    )


def test_orders_paid_after_orders_create_with_another_body_is_200_and_changes_nothing(client, shop):
    site, _ = shop
    created = shopify_order(financial_status="pending", note_attributes=cart_attribute(VISITOR))
    assert send(client, site, created, delivery_id="create-1").json["status"] == "recorded"
    paid = shopify_order(
        financial_status="paid", total_price="1600.00", note_attributes=cart_attribute(VISITOR)
    )
    response = send(client, site, paid, delivery_id="paid-1", topic="orders/paid")
    assert response.status_code == 200  # not 409: Shopify would retry, then drop the webhook
    assert (response.json["status"], response.json["reason"]) == ("duplicate", "order_id")
    [stored] = orders()
    assert stored.total == Decimal("1575.90")
    assert visitor(VISITOR).order_count == 1
    assert count(PlatformReceipt) == 1  # the duplicate delivery left no receipt


def test_an_order_the_shop_already_sent_itself_is_a_duplicate(client, shop):
    site, _ = shop
    ours = {"order_id": ORDER_ID, "total": "1575.90", "currency": "USD"}
    assert post_order(client, site, ours).status_code == 201
    response = send(client, site, shopify_order())
    assert (response.status_code, response.json["status"]) == (200, "duplicate")
    assert count(Order) == 1


# -- coupon codes ----------------------------------------------------------------------------------


def test_a_won_pool_code_is_redeemed_for_the_winner(client, shop):
    site, wheel = shop
    variant_id = wheel["variants"][0]["id"]
    code = won_code(client, site, wheel)
    order = shopify_order(
        customer=None, discount_codes=[{"code": code, "amount": "157.59", "type": "percentage"}]
    )
    response = send(client, site, order)
    assert response.json["status"] == "recorded", response.json
    assert response.json["coupon"]["accepted"] is True
    coupon = db.session.scalar(select(CouponCode).where(CouponCode.code == code))
    assert coupon.status == "redeemed"
    [stored] = orders()
    winner = visitor(VISITOR)
    assert (stored.coupon_id, stored.visitor_id) == (coupon.id, winner.id)
    assert (winner.order_count, winner.total_spent) == (1, Decimal("1575.90"))
    redemption = campaign_figures(wheel["id"], "coupon_redemption")[variant_id]
    assert (redemption.visitors, redemption.conversions) == (1, 1)
    assert campaign_figures(wheel["id"], "revenue")[variant_id].value_sum == pytest.approx(1575.90)


def test_a_code_the_store_made_itself_is_recorded_with_its_revenue_and_redeems_nothing(
    client, shop
):
    site, wheel = shop
    variant_id = wheel["variants"][0]["id"]
    won_code(client, site, wheel)  # the visitor's own code stays theirs, unused
    order = shopify_order(
        discount_codes=[{"code": "SUMMER10", "amount": "10.00", "type": "fixed_amount"}],
        note_attributes=cart_attribute(VISITOR),
    )
    response = send(client, site, order)
    assert response.status_code == 200  # our own orders call answers 422 for this
    assert response.json["status"] == "recorded"
    assert response.json["coupon"] == {
        "code": "SUMMER10",
        "accepted": False,
        "reason": "not_issued",
        "expires_at": None,
    }
    [stored] = orders()
    assert (stored.coupon_code, stored.coupon_id, stored.total) == (
        "SUMMER10",
        None,
        Decimal("1575.90"),
    )
    assert [c["metric"] for c in response.json["conversions"]] == ["revenue"]
    assert campaign_figures(wheel["id"], "revenue")[variant_id].value_sum == pytest.approx(1575.90)
    assert campaign_figures(wheel["id"], "coupon_redemption")[variant_id].conversions == 0
    assert db.session.scalar(select(func.count()).where(CouponCode.status == "redeemed")) == 0


def test_a_code_another_order_redeemed_is_recorded_and_redeems_nothing(client, shop):
    site, wheel = shop
    code = won_code(client, site, wheel)
    discount = [{"code": code, "amount": "10.00", "type": "percentage"}]
    assert send(client, site, shopify_order(discount_codes=discount)).json["coupon"]["accepted"]
    second = shopify_order(id=820982911946154509, discount_codes=discount)
    response = send(client, site, second)
    assert (response.status_code, response.json["status"]) == (200, "recorded")
    assert response.json["coupon"]["reason"] == "already_redeemed"
    first, again = orders()
    assert (first.coupon_id is not None, again.coupon_id) == (True, None)
    assert again.coupon_code == code


def test_of_several_codes_the_one_funnelcake_handed_out_is_kept(client, shop):
    site, wheel = shop
    code = won_code(client, site, wheel)
    order = shopify_order(
        discount_codes=[
            {"code": "FREESHIPPING", "amount": "10.00", "type": "shipping"},
            {"code": code, "amount": "10.00", "type": "percentage"},
        ]
    )
    response = send(client, site, order)
    assert response.json["coupon"]["code"] == code
    assert response.json["coupon"]["accepted"] is True


def test_a_wheels_fixed_code_counts_for_the_linked_visitor_who_won_it(
    client, admin, make_site, make_wheel
):
    site = make_site()
    connect_platform(admin, site, "shopify", link_cart=True)
    wheel = make_wheel(
        site, [slice_("Free shipping", 1, {"type": "code", "code": "FREESHIP"}), slice_("No", 0)]
    )
    variant_id = wheel["variants"][0]["id"]
    assert won_code(client, site, wheel) == "FREESHIP"
    order = shopify_order(
        discount_codes=[{"code": "FREESHIP", "amount": "10.00", "type": "shipping"}],
        note_attributes=cart_attribute(VISITOR),
    )
    response = send(client, site, order)
    assert response.json["coupon"]["accepted"] is True
    assert campaign_figures(wheel["id"], "coupon_redemption")[variant_id].conversions == 1


# -- the cart link -----------------------------------------------------------------------------


def test_the_cart_attribute_links_the_order_to_the_visitor(client, shop):
    site, wheel = shop
    variant_id = wheel["variants"][0]["id"]
    decide(client, site, VISITOR)
    send_events(client, site, [event("impression", VISITOR, wheel["id"], variant_id)])
    response = send(
        client, site, shopify_order(customer=None, note_attributes=cart_attribute(VISITOR))
    )
    assert response.json["status"] == "recorded"
    buyer = visitor(VISITOR)
    assert orders()[0].visitor_id == buyer.id
    assert (buyer.order_count, buyer.total_spent) == (1, Decimal("1575.90"))
    assert {
        "metric": "revenue",
        "campaign_id": wheel["id"],
        "variant_id": variant_id,
    } in response.json["conversions"]


def test_the_cart_attribute_is_ignored_when_the_site_does_not_link_carts(client, admin, make_site):
    site = make_site()
    connect_platform(admin, site, "shopify", link_cart=False)
    response = send(client, site, shopify_order(note_attributes=cart_attribute(VISITOR)))
    assert response.json["status"] == "recorded"
    assert orders()[0].visitor_id is None
    assert visitor(VISITOR) is None


@pytest.mark.parametrize(
    "value",
    [
        "short",
        "has spaces in it",
        "<script>alert(1)</script>",
        "x" * 65,
        "visitor-0001\n",
        12345678,
        None,
        {"id": "visitor-0001"},
        ["visitor-0001"],
    ],
    ids=["short", "spaces", "markup", "long", "newline", "number", "null", "object", "list"],
)
def test_a_cart_attribute_that_is_not_a_visitor_id_is_ignored_never_refused(client, shop, value):
    site, _ = shop
    response = send(client, site, shopify_order(note_attributes=cart_attribute(value)))
    assert (response.status_code, response.json["status"]) == (200, "recorded")
    assert orders()[0].visitor_id is None
    assert count(Visitor) == 0


def test_a_forged_link_cannot_outrank_the_customer_shopify_names(client, shop):
    """The shopper wrote someone else's visitor id into the cart; Shopify says who bought."""
    site, _ = shop
    decide(client, site, "visitor-own-0001")
    identify = {"visitor_id": "visitor-own-0001", "customer_id": CUSTOMER_ID}
    assert post_public(client, site, "identify", identify).status_code == 200
    decide(client, site, "visitor-victim-01")
    response = send(
        client, site, shopify_order(note_attributes=cart_attribute("visitor-victim-01"))
    )
    assert response.json["status"] == "recorded"
    assert orders()[0].visitor_id == visitor("visitor-own-0001").id
    assert visitor("visitor-victim-01").order_count == 0


def test_a_forged_link_to_a_made_up_id_costs_an_order_per_visitor(client, shop):
    site, _ = shop
    for number in range(2):
        forged = cart_attribute(f"made-up-visitor-{number}")
        send(client, site, shopify_order(id=1000 + number, customer=None, note_attributes=forged))
    assert count(Visitor) == count(Order) == 2


def test_a_guest_order_links_to_the_visitor_whose_spin_gave_its_email(
    client, admin, make_site, make_wheel
):
    site = make_site()
    connect_platform(admin, site, "shopify")
    capture = {"enabled": True, "required": True}
    wheel = make_wheel(
        site,
        [slice_("Free", 1, {"type": "code", "code": "FREE"}), slice_("No", 0)],
        email_capture=capture,
    )
    spun = decided_spin(client, site, wheel["id"], VISITOR, email="Jon+wheel@Example.com")
    assert spun.status_code == 200, spun.json
    response = send(client, site, shopify_order(customer=None, email="jon@example.com"))
    assert response.json["status"] == "recorded"
    assert orders()[0].visitor_id == visitor(VISITOR).id


# -- bad input: a 400 naming the field, nothing stored ---------------------------------------------


@pytest.mark.parametrize(
    "change, field",
    [
        ({"id": MISSING}, "id"),
        ({"id": "820982911946154508"}, "id"),
        ({"id": True}, "id"),
        ({"id": 0}, "id"),
        ({"id": 2**64}, "id"),
        ({"total_price": "abc"}, "total_price"),
        ({"total_price": "-1.00"}, "total_price"),
        ({"total_price": "1e13"}, "total_price"),
        ({"total_price": None}, "total_price"),
        ({"currency": "usd"}, "currency"),
        ({"currency": 840}, "currency"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"created_at": "2024-06-26T12:33:21"}, "created_at"),  # no offset
        ({"created_at": "1999-12-31T23:59:59+00:00"}, "created_at"),
        ({"created_at": "0001-01-01T00:00:00+01:00"}, "created_at"),
        ({"created_at": 1719419601}, "created_at"),
        ({"discount_codes": "SUMMER10"}, "discount_codes"),
        ({"discount_codes": ["SUMMER10"]}, "discount_codes.0"),
        ({"discount_codes": [{"amount": "10.00"}]}, "discount_codes.0.code"),
        ({"discount_codes": [{"code": ""}]}, "discount_codes.0.code"),
        ({"note_attributes": {"_funnelcake_visitor": VISITOR}}, "note_attributes"),
        ({"note_attributes": ["_funnelcake_visitor"]}, "note_attributes.0"),
        ({"note_attributes": [{"value": VISITOR}]}, "note_attributes.0.name"),
        ({"customer": "115310627314723954"}, "customer"),
        ({"customer": {"id": "115310627314723954"}}, "customer.id"),
        ({"email": 42}, "email"),
        ({"test": "maybe"}, "test"),
        ({"cancelled_at": "soon"}, "cancelled_at"),
    ],
)
def test_a_malformed_order_is_a_400_naming_the_field(client, shop, change, field):
    site, _ = shop
    order = {k: v for k, v in shopify_order(**change).items() if v is not MISSING}
    response = send(client, site, order, delivery_id="delivery-bad")
    assert response.status_code == 400, response.json
    assert field in response.json["error"]["fields"], response.json
    assert (count(Order), count(PlatformReceipt), count(Visitor)) == (0, 0, 0)


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"", "Empty body."),
        (b"{not json", "Not valid JSON."),
        (b"[1, 2]", "Must be an object."),
        (b'"order"', "Must be an object."),
        (b'{"id": NaN}', "Not valid JSON."),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_400(client, shop, raw, reason):
    site, _ = shop
    response = send(client, site, raw=raw)
    assert response.status_code == 400
    assert response.json["error"]["fields"] == {"_schema": [reason]}
    assert count(Order) == 0


def test_a_body_over_the_size_limit_is_413_and_stores_nothing(client, shop):
    site, _ = shop
    huge = shopify_order(note=("x" * 600_000))
    response = send(client, site, huge)
    assert response.status_code == 413
    assert response.json["error"]["code"] == "request_entity_too_large"
    assert count(Order) == 0


def test_a_malformed_delivery_id_is_a_400_naming_the_header(client, shop):
    site, _ = shop
    response = send(client, site, shopify_order(), delivery_id="x" * 201)
    assert response.status_code == 400
    assert "X-Shopify-Webhook-Id" in response.json["error"]["fields"]
    assert count(Order) == 0


# -- time ------------------------------------------------------------------------------------------


@pytest.fixture
def expiring_shop(admin, make_site, make_pool, make_wheel):
    """A Shopify site whose wheel's codes are valid for 30 minutes."""
    site = make_site()
    connect_platform(admin, site, "shopify", link_cart=True)
    pool = make_pool(site, codes=["SOON-1"])
    prize = {**pool_slice("10% off", 1, pool["id"]), "expires_in_minutes": 30}
    wheel = make_wheel(site, [prize, slice_("No", 0)])
    return site, wheel


def test_an_order_created_before_the_code_expired_counts_though_received_after(
    client, expiring_shop
):
    site, wheel = expiring_shop
    code = won_code(client, site, wheel)
    time_passes(timedelta(minutes=90))  # the code expired an hour ago; Shopify delivers late
    expires_at = db.session.scalar(select(CouponCode.expires_at).where(CouponCode.code == code))
    created = (expires_at - timedelta(minutes=1)).astimezone(UTC).isoformat()
    order = shopify_order(
        created_at=created, discount_codes=[{"code": code, "amount": "1", "type": "percentage"}]
    )
    response = send(client, site, order)
    assert response.json["coupon"]["accepted"] is True
    assert orders()[0].ordered_at == expires_at - timedelta(minutes=1)


def test_an_order_created_after_the_code_expired_redeems_nothing(client, expiring_shop):
    site, wheel = expiring_shop
    code = won_code(client, site, wheel)
    time_passes(timedelta(minutes=90))
    created = datetime.now(UTC).isoformat()
    order = shopify_order(
        created_at=created, discount_codes=[{"code": code, "amount": "1", "type": "percentage"}]
    )
    response = send(client, site, order)
    assert (response.json["status"], response.json["coupon"]["reason"]) == ("recorded", "expired")
    assert db.session.scalar(select(CouponCode.status).where(CouponCode.code == code)) == "assigned"


def test_a_created_at_in_the_future_counts_as_now(client, shop):
    site, _ = shop
    before = datetime.now(UTC)
    send(client, site, shopify_order(created_at="2999-01-01T00:00:00-04:00"))
    [stored] = orders()
    assert before <= stored.ordered_at <= datetime.now(UTC)


# -- as quick as the shop's own call ---------------------------------------------------------------


def test_a_delivery_costs_about_what_the_shops_own_call_costs(client, shop):
    site, wheel = shop
    code = won_code(client, site, wheel)
    ours = {
        "order_id": "1",
        "total": "10",
        "currency": "USD",
        "coupon_code": code,
        "customer_id": CUSTOMER_ID,
    }
    with statements_sent() as own_call:
        assert post_order(client, site, ours).status_code == 201
    other_code = won_code(client, site, wheel, "visitor-cart-0002")
    discount = [{"code": other_code, "amount": "10.00", "type": "percentage"}]
    with statements_sent() as delivery:
        response = send(client, site, shopify_order(discount_codes=discount), delivery_id="d-1")
    assert response.json["coupon"]["accepted"] is True
    # The platform's extras: which listed code is ours (pool codes, wheels' fixed codes), the
    # delivery's receipt (read, written).
    extra = [s.sql for s in delivery[len(own_call) :]]
    assert len(delivery) <= len(own_call) + 4, extra


@pytest.mark.parametrize("code", ["BAD\x00CODE", "\ud800", "X" * 101])
def test_a_code_that_cannot_be_ours_is_not_kept_and_fails_nothing(client, shop, code):
    site, _ = shop
    order = shopify_order(
        discount_codes=[{"code": code, "amount": "1.00", "type": "fixed_amount"}],
        email="jon\x00@example.com",
    )
    response = send(client, site, order)
    assert (response.status_code, response.json["status"]) == (200, "recorded")
    assert response.json["coupon"] is None
    assert orders()[0].coupon_code is None
