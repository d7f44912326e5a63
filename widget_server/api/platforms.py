"""Store platforms' own order webhooks, under ``/api/v1/sites/<site_key>/integrations/``.

Server to server, like the shop's own orders call: no CORS, no origin check, no CSRF; each body is
signed by the platform with the secret the site keeps for it (``integrations.<platform>``).
Every delivery with a right signature is answered 200, also when it records nothing (see
``services.rewards.platform_orders`` for why, and for what counts).
"""

import re

from flask import Blueprint, jsonify, request

from ..errors import ValidationFailed
from ..schemas.common import load_or_raise, parse_json_body
from ..schemas.platforms import (
    PlatformOrderAnswerSchema,
    ShopifyOrderSchema,
    WooCommerceOrderSchema,
)
from ..services.rewards import platform_orders
from ..services.rewards.platform_orders import (
    DELIVERY_HEADERS,
    SIGNATURE_HEADERS,
    TOPIC_HEADERS,
    Delivery,
)
from ..vocabulary import SHOPIFY, WOOCOMMERCE
from .openapi import documented

bp = Blueprint("platforms", __name__, url_prefix="/api/v1/sites/<site_key>/integrations")

shopify_order_schema = ShopifyOrderSchema()
woocommerce_order_schema = WooCommerceOrderSchema()

#: A platform's delivery id as sent in a header: a UUID (Shopify), a hash (WooCommerce).
_DELIVERY_ID = re.compile(r"[\x21-\x7e]{1,200}")


@bp.post("/shopify/orders")
@documented(
    body=shopify_order_schema,
    headers={
        SIGNATURE_HEADERS[SHOPIFY]: "base64 HMAC-SHA256 of the raw body with the webhook secret"
    },
    answer=PlatformOrderAnswerSchema,
)
def shopify_order(site_key):
    """Receive Shopify's ``orders/create`` or ``orders/paid`` webhook, its body unchanged.

    Answered 200 whenever the signature is right: ``status`` is ``recorded``, ``duplicate`` (a
    replay of the order or of the delivery: Shopify retries anything else for 48 hours, then
    deletes the subscription), or ``ignored`` (a test or cancelled order). A discount code of the
    store's own is recorded with the order and redeems nothing (``coupon.reason``
    ``not_issued``).

    :raise 400: the body is not a Shopify order; ``fields`` names the field.
    :raise 401: ``X-Shopify-Hmac-Sha256`` is missing or wrong, or no Shopify secret is set.
    :raise 404: no site has this key.
    """
    return _received(site_key, SHOPIFY, shopify_order_schema)


@bp.post("/woocommerce/orders")
@documented(
    body=woocommerce_order_schema,
    headers={
        SIGNATURE_HEADERS[WOOCOMMERCE]: "base64 HMAC-SHA256 of the raw body with the webhook secret"
    },
    answer=PlatformOrderAnswerSchema,
)
def woocommerce_order(site_key):
    """Receive WooCommerce's ``order.created`` or ``order.updated`` webhook, or its ping.

    Answered 200 whenever the signature is right: ``status`` is ``recorded`` (an order in status
    processing, completed or on-hold, the first time), ``duplicate`` or ``ignored`` (another
    status: pending, failed, cancelled, refunded, checkout-draft). The ping WooCommerce sends
    when the webhook is saved (``webhook_id=<n>``, form-encoded, unsigned) is answered 200
    ``ping`` and stores nothing.

    :raise 400: the body is not a WooCommerce order; ``fields`` names the field.
    :raise 401: ``X-WC-Webhook-Signature`` is missing or wrong, or no WooCommerce secret is set.
    :raise 404: no site has this key.
    """
    return _received(site_key, WOOCOMMERCE, woocommerce_order_schema)


def _received(site_key: str, platform: str, schema):
    """Check, read and record one delivery of ``platform``: the two views' one path."""
    body = request.get_data(cache=True)
    site = platform_orders.platform_site(site_key)
    if platform == WOOCOMMERCE and platform_orders.is_woocommerce_ping(body):
        return jsonify(platform_orders.ping(platform).as_json())
    platform_orders.check_signature(
        site, platform, body, request.headers.get(SIGNATURE_HEADERS[platform])
    )
    delivery = Delivery(
        platform,
        webhook_id=_delivery_id(platform),
        topic=request.headers.get(TOPIC_HEADERS[platform]) or None,
    )
    outcome = platform_orders.topic_outcome(delivery)
    if outcome is None:
        order = load_or_raise(schema, parse_json_body(request))
        outcome = platform_orders.receive_order(site, delivery, order)
    return jsonify(outcome.as_json())


def _delivery_id(platform: str) -> str | None:
    """The delivery's id header, or None when not sent.

    :raise ValidationFailed: naming the header when it is not a printable token of 1-200.
    """
    header = DELIVERY_HEADERS[platform]
    value = request.headers.get(header, "").strip()
    if not value:
        return None
    if not _DELIVERY_ID.fullmatch(value):
        raise ValidationFailed(
            f"{header} is not a delivery id.", {header: ["1-200 printable ASCII characters."]}
        )
    return value
