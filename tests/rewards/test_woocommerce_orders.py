"""WooCommerce's own ``order.created`` / ``order.updated`` webhook and its ping, by configuration
alone: the body signed as WooCommerce signs it (``X-WC-Webhook-Signature``: the base64
HMAC-SHA256 of the raw body with the webhook's secret, ``WC_Webhook::generate_signature``)
becomes an order once its status counts.

``tests/fixtures/woocommerce_order.json`` is the "Retrieve an order" JSON response example of
WooCommerce's REST API documentation (``woocommerce/woocommerce-rest-api-docs``,
source/includes/wp-api-v3/_orders.md), verbatim: a webhook's body is that same REST order
(``WC_Webhook::build_payload``). The ping is what ``WC_Webhook::deliver_ping`` (WooCommerce's
includes/class-wc-webhook.php) posts when a webhook is saved: ``webhook_id=<id>``, form-encoded,
with no signature header, and the webhook is saved only when it is answered 200.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.helpers import decide, event, send_events, time_passes
from tests.rewards.conftest import pool_slice, slice_
from tests.rewards.helpers import (
    FIXTURES,
    connect_platform,
    decided_spin,
    fixture,
    post_platform,
)
from widget_server.extensions import db
from widget_server.models import CouponCode, Order, PlatformReceipt, Visitor
from widget_server.services.promotion.metrics import campaign_figures

FIXTURE = "woocommerce_order.json"
VISITOR = "visitor-woo-0001"
MISSING = object()


def woo_order(**changes) -> dict:
    """The documented order as a checkout that just happened sends it, with ``changes``."""
    order = fixture(FIXTURE)
    order["date_created_gmt"] = datetime.now(UTC).replace(tzinfo=None).isoformat()
    order.update(changes)
    return {k: v for k, v in order.items() if v is not MISSING}


def visitor_meta(value) -> list[dict]:
    return [
        {"id": 13106, "key": "_download_permissions_granted", "value": "yes"},
        {"id": 13107, "key": "_funnelcake_visitor", "value": value},
    ]


def send(client, site, order=None, **kwargs):
    return post_platform(client, site, "woocommerce", order, **kwargs)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def orders() -> list[Order]:
    db.session.expire_all()
    return list(db.session.scalars(select(Order).order_by(Order.id)))


def visitor(key) -> Visitor | None:
    db.session.expire_all()
    return db.session.scalar(select(Visitor).where(Visitor.visitor_key == key))


def nothing_stored() -> bool:
    return (count(Order), count(PlatformReceipt), count(Visitor)) == (0, 0, 0)


@pytest.fixture
def shop(admin, make_site, make_pool, make_wheel):
    """A WooCommerce site (secret set, carts linked) whose wheel always lands on a pool slice."""
    site = make_site()
    connect_platform(admin, site, "woocommerce", link_cart=True)
    pool = make_pool(site, generate=3, prefix="SPIN-")
    wheel = make_wheel(site, [pool_slice("10% off", 1, pool["id"]), slice_("No", 0)])
    return site, wheel


def won_code(client, site, wheel, visitor_id=VISITOR) -> str:
    assert decide(client, site, visitor_id).status_code == 200
    shown = event("impression", visitor_id, wheel["id"], wheel["variants"][0]["id"])
    assert send_events(client, site, [shown]).status_code == 202
    return decided_spin(client, site, wheel["id"], visitor_id).json["code"]


# -- the documented order and the ping ---------------------------------------------------------


def test_the_documented_order_is_recorded_with_woocommerces_fields(client, shop):
    site, _ = shop
    raw = (FIXTURES / FIXTURE).read_bytes()  # signed as recorded, byte for byte
    response = send(client, site, raw=raw, delivery_id="36e520ebabc2fa725092ff4a47acedf2")
    assert response.status_code == 200, response.json
    assert (response.json["status"], response.json["platform"]) == ("recorded", "woocommerce")
    [stored] = orders()
    assert (stored.order_ref, stored.total, stored.currency) == ("727", Decimal("29.35"), "USD")
    assert stored.customer_id is None  # customer_id 0: a guest
    # date_created_gmt has no suffix: it is UTC (date_created is the shop's local time).
    assert stored.ordered_at == datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC)
    assert count(PlatformReceipt) == 1


def test_a_registered_customer_is_named_by_their_user_id(client, shop):
    site, _ = shop
    send(client, site, woo_order(customer_id=12))
    assert orders()[0].customer_id == "12"


def test_the_ping_of_a_new_webhook_is_200_and_stores_nothing(client, make_site):
    site = make_site()  # no secret yet: the owner saves the webhook before pasting it here
    response = send(
        client,
        site,
        raw=b"webhook_id=3",
        signature=False,
        content_type="application/x-www-form-urlencoded",
        topic=False,
    )
    assert response.status_code == 200  # exactly 200: WooCommerce saves the webhook on it
    assert response.json["status"] == "ping"
    assert nothing_stored()


def test_a_ping_to_an_unknown_site_is_404(client):
    response = send(client, {"site_key": "pk_nope"}, raw=b"webhook_id=3", signature=False)
    assert response.status_code == 404


@pytest.mark.parametrize(
    "raw", [b"webhook_id=3&total=0", b"webhook_id=", b"webhook_id=3x", b"webhook_ids=3"]
)
def test_only_the_exact_ping_passes_unsigned(client, shop, raw):
    site, _ = shop
    response = send(client, site, raw=raw, signature=False)
    assert response.status_code == 401
    assert nothing_stored()


# -- statuses ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["processing", "completed", "on-hold"])
def test_a_sale_status_records_the_order(client, shop, status):
    site, _ = shop
    response = send(client, site, woo_order(status=status))
    assert response.json["status"] == "recorded"
    assert count(Order) == 1


@pytest.mark.parametrize(
    "status", ["pending", "failed", "cancelled", "refunded", "checkout-draft", "trash", "shipped"]
)
def test_another_status_is_acknowledged_and_not_stored(client, shop, status):
    site, _ = shop
    response = send(client, site, woo_order(status=status), delivery_id=f"d-{status}")
    assert response.status_code == 200
    assert (response.json["status"], response.json["reason"]) == ("ignored", "status_not_counted")
    assert status in response.json["message"]
    assert nothing_stored()


def test_an_order_counts_from_the_update_that_makes_it_a_sale_and_once(client, shop):
    site, _ = shop
    linked = visitor_meta(VISITOR)
    created = send(client, site, woo_order(status="pending", meta_data=linked), delivery_id="a")
    assert created.json["status"] == "ignored"
    paid = woo_order(status="processing", meta_data=linked)
    assert send(client, site, paid, delivery_id="b", topic="order.updated").json["status"] == (
        "recorded"
    )
    shipped = woo_order(
        status="completed", meta_data=linked, date_modified_gmt="2030-01-01T00:00:00"
    )
    again = send(client, site, shipped, delivery_id="c", topic="order.updated")
    assert again.status_code == 200
    assert (again.json["status"], again.json["reason"]) == ("duplicate", "order_id")
    assert (count(Order), count(PlatformReceipt), visitor(VISITOR).order_count) == (1, 1, 1)


def test_the_same_delivery_again_changes_nothing(client, shop):
    site, _ = shop
    order = woo_order()
    assert send(client, site, order, delivery_id="same").json["status"] == "recorded"
    again = send(client, site, order, delivery_id="same")
    assert (again.status_code, again.json["reason"]) == (200, "webhook_id")
    assert (count(Order), count(PlatformReceipt)) == (1, 1)


def test_a_deleted_order_topic_is_acknowledged_and_not_read(client, shop):
    site, _ = shop
    response = send(client, site, {"id": 727}, topic="order.deleted")
    assert (response.status_code, response.json["reason"]) == (200, "topic_not_counted")
    assert nothing_stored()


# -- signatures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [False, "", "c2lnbmF0dXJl", "sha256=00"])
def test_a_missing_or_wrong_signature_is_401_and_stores_nothing(client, shop, header):
    site, _ = shop
    response = send(client, site, woo_order(), signature=header)
    assert response.status_code == 401
    assert "X-WC-Webhook-Signature" in response.json["error"]["fields"]
    assert nothing_stored()


def test_the_shopify_secret_does_not_sign_woocommerce_orders(client, admin, make_site):
    site = make_site()
    connect_platform(admin, site, "shopify", secret="only-for-shopify")
    response = send(client, site, woo_order(), secret="only-for-shopify")
    assert response.status_code == 401
    assert nothing_stored()


# -- coupon codes ----------------------------------------------------------------------------------


def test_a_won_code_written_in_lower_case_is_redeemed(client, shop):
    """WooCommerce keeps coupon codes in lower case; the pool's generated codes are capitals."""
    site, wheel = shop
    variant_id = wheel["variants"][0]["id"]
    code = won_code(client, site, wheel)
    lines = [{"id": 320, "code": code.lower(), "discount": "2.94", "discount_tax": "0"}]
    response = send(client, site, woo_order(coupon_lines=lines))
    assert response.json["coupon"]["accepted"] is True, response.json
    assert response.json["coupon_code"] == code
    assert db.session.scalar(select(CouponCode.status).where(CouponCode.code == code)) == "redeemed"
    assert orders()[0].visitor_id == visitor(VISITOR).id
    assert campaign_figures(wheel["id"], "coupon_redemption")[variant_id].conversions == 1


def test_a_coupon_of_the_stores_own_is_recorded_and_redeems_nothing(client, shop):
    site, _ = shop
    lines = [{"id": 320, "code": "welcome5", "discount": "5.00", "discount_tax": "0"}]
    response = send(client, site, woo_order(coupon_lines=lines))
    assert response.status_code == 200
    assert response.json["coupon"]["reason"] == "not_issued"
    [stored] = orders()
    assert (stored.coupon_code, stored.total) == ("welcome5", Decimal("29.35"))


# -- the cart link: the order meta the shop's checkout copies from the cookie --------------------


def test_the_order_meta_links_the_order_to_the_visitor(client, shop):
    site, _ = shop
    decide(client, site, VISITOR)
    response = send(client, site, woo_order(meta_data=visitor_meta(VISITOR)))
    assert response.json["status"] == "recorded"
    buyer = visitor(VISITOR)
    assert orders()[0].visitor_id == buyer.id
    assert (buyer.order_count, buyer.total_spent) == (1, Decimal("29.35"))


def test_the_order_meta_is_ignored_when_the_site_does_not_link_carts(client, admin, make_site):
    site = make_site()
    connect_platform(admin, site, "woocommerce", link_cart=False)
    send(client, site, woo_order(meta_data=visitor_meta(VISITOR)))
    assert orders()[0].visitor_id is None
    assert visitor(VISITOR) is None


@pytest.mark.parametrize(
    "value",
    ["short", "visitor id", "'; DROP TABLE orders; --", "v" * 65, 42, None, ["visitor-woo-0001"]],
)
def test_an_order_meta_that_is_not_a_visitor_id_is_ignored(client, shop, value):
    site, _ = shop
    response = send(client, site, woo_order(meta_data=visitor_meta(value)))
    assert (response.status_code, response.json["status"]) == (200, "recorded")
    assert orders()[0].visitor_id is None
    assert count(Visitor) == 0


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, field",
    [
        ({"id": MISSING}, "id"),
        ({"id": "727"}, "id"),
        ({"id": -1}, "id"),
        ({"status": MISSING}, "status"),
        ({"status": 1}, "status"),
        ({"total": "29,35"}, "total"),
        ({"total": "NaN"}, "total"),
        ({"currency": "US Dollar"}, "currency"),
        ({"date_created_gmt": "22/03/2017 19:28"}, "date_created_gmt"),
        ({"date_created_gmt": "1970-01-01T00:00:00"}, "date_created_gmt"),
        ({"customer_id": "12"}, "customer_id"),
        ({"customer_id": -5}, "customer_id"),
        ({"billing": "john.doe@example.com"}, "billing"),
        ({"billing": {"email": ["john.doe@example.com"]}}, "billing.email"),
        ({"coupon_lines": {"code": "welcome5"}}, "coupon_lines"),
        ({"coupon_lines": [{"discount": "5.00"}]}, "coupon_lines.0.code"),
        ({"coupon_lines": [{"code": 5}]}, "coupon_lines.0.code"),
        ({"meta_data": "_funnelcake_visitor"}, "meta_data"),
        ({"meta_data": [{"value": VISITOR}]}, "meta_data.0.key"),
        ({"meta_data": [None]}, "meta_data.0"),
    ],
)
def test_a_malformed_order_is_a_400_naming_the_field(client, shop, change, field):
    site, _ = shop
    response = send(client, site, woo_order(**change), delivery_id="bad")
    assert response.status_code == 400, response.json
    assert field in response.json["error"]["fields"], response.json
    assert nothing_stored()


@pytest.mark.parametrize("raw", [b"<order/>", b"[]", b"null", b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_a_400(client, shop, raw):
    site, _ = shop
    response = send(client, site, raw=raw)
    assert response.status_code == 400
    assert "_schema" in response.json["error"]["fields"]
    assert nothing_stored()


# -- time ------------------------------------------------------------------------------------------


def test_an_order_made_before_the_code_expired_counts_though_delivered_after(
    client, admin, make_site, make_pool, make_wheel
):
    """WooCommerce delivers from wp-cron: a late delivery still counts by date_created_gmt."""
    site = make_site()
    connect_platform(admin, site, "woocommerce", link_cart=True)
    pool = make_pool(site, codes=["SOON-1"])
    prize = {**pool_slice("10% off", 1, pool["id"]), "expires_in_minutes": 30}
    wheel = make_wheel(site, [prize, slice_("No", 0)])
    code = won_code(client, site, wheel)
    time_passes(timedelta(hours=2))
    expires_at = db.session.scalar(select(CouponCode.expires_at).where(CouponCode.code == code))
    made = (expires_at - timedelta(minutes=5)).replace(tzinfo=None).isoformat()
    lines = [{"id": 1, "code": code.lower()}]
    response = send(client, site, woo_order(date_created_gmt=made, coupon_lines=lines))
    assert response.json["coupon"]["accepted"] is True
    late = woo_order(id=728, date_created_gmt=datetime.now(UTC).replace(tzinfo=None).isoformat())
    late["coupon_lines"] = lines
    assert send(client, site, late).json["coupon"]["reason"] == "already_redeemed"
