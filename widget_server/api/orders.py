"""The orders webhook the shop's back end calls: ``POST /api/v1/sites/<site_key>/orders``.

Server to server: no CORS and no origin check (browsers cannot read the answers), but every body
must be signed with the site secret (``X-Funnelcake-Signature: sha256=<hex HMAC-SHA256>``).
"""

from flask import Blueprint, jsonify, request

from ..schemas.common import load_or_raise, parse_json_body
from ..schemas.rewards import OrderAnswerSchema, OrderSchema
from ..services.rewards import orders
from .openapi import documented

bp = Blueprint("orders", __name__, url_prefix="/api/v1/sites/<site_key>")

order_schema = OrderSchema()


@bp.post("/orders")
@documented(
    body=order_schema,
    headers={orders.SIGNATURE_HEADER: "sha256=<hex HMAC-SHA256 of the body with the site secret>"},
    answer=OrderAnswerSchema,
    status=201,
)
def receive_order(site_key):
    """Store an order once (idempotent by ``order_id``), redeem its coupon, count conversions.

    :raise 401: the signature header is missing or wrong.
    :raise 409: the order came before (``duplicate_order``: a replay, nothing changed), its id
        came with another body, or the coupon was redeemed already.
    :raise 422: the coupon code was never issued by this site.
    """
    site = orders.signed_site(
        site_key, request.get_data(cache=True), request.headers.get(orders.SIGNATURE_HEADER)
    )
    payload = load_or_raise(order_schema, parse_json_body(request))
    result = orders.record_order(site.id, payload)
    order = result.order
    body = {
        "order_id": order.order_ref,
        "customer_id": order.customer_id,
        "coupon_code": order.coupon_code,
        "total": str(order.total),
        "currency": order.currency,
        "conversions": [c.as_json() for c in result.conversions],
        "coupon": result.coupon.as_json() if result.coupon else None,
    }
    return jsonify(body), 201
