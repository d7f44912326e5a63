"""Calling the wheel and the orders webhooks the way the snippet, a shop back end and the store
platforms (Shopify, WooCommerce) do."""

import base64
import hashlib
import hmac
import json
from pathlib import Path

from tests.helpers import decide, post_public


def spin(client, site, campaign_id, visitor_id="visitor-0001", **extra):
    body = {"visitor_id": visitor_id, "campaign_id": campaign_id, **extra}
    return post_public(client, site, "spin", body)


def decided_spin(client, site, campaign_id, visitor_id="visitor-0001", **extra):
    """Decide (which assigns the visitor a variant), then spin."""
    assert decide(client, site, visitor_id).status_code == 200
    return spin(client, site, campaign_id, visitor_id, **extra)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_order(client, site, order: dict, secret=None, raw: bytes | None = None, header=None):
    """POST an order signed with the site secret (or ``secret``); ``header`` overrides it."""
    body = raw if raw is not None else json.dumps(order).encode()
    headers = {"Content-Type": "application/json"}
    if header is not False:
        headers["X-Funnelcake-Signature"] = header or signature(secret or site["secret"], body)
    return client.post(f"/api/v1/sites/{site['site_key']}/orders", data=body, headers=headers)


# --- store platforms: their own webhook bodies, signed as they sign them ------------------------

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PLATFORM_SECRETS = {"shopify": "shpss_test_webhook_secret", "woocommerce": "wc secret: 7g#Q!"}


def fixture(name: str) -> dict:
    """A recorded platform payload from ``tests/fixtures`` (each test module names its source)."""
    return json.loads((FIXTURES / name).read_text())


def platform_signature(secret: str, body: bytes) -> str:
    """How Shopify and WooCommerce sign a webhook: the base64 HMAC-SHA256 of the raw body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def connect_platform(admin, site, platform, secret=None, link_cart=False):
    """Set the site's webhook secret (and cart link) for ``platform`` through the admin API."""
    settings = {"webhook_secret": secret or PLATFORM_SECRETS[platform], "link_cart": link_cart}
    response = admin.patch(
        f"/api/v1/admin/sites/{site['id']}", json={"integrations": {platform: settings}}
    )
    assert response.status_code == 200, response.json
    return response.json


SIGNATURE_HEADER = {"shopify": "X-Shopify-Hmac-Sha256", "woocommerce": "X-WC-Webhook-Signature"}
DELIVERY_HEADER = {"shopify": "X-Shopify-Webhook-Id", "woocommerce": "X-WC-Webhook-Delivery-ID"}
TOPIC_HEADER = {"shopify": "X-Shopify-Topic", "woocommerce": "X-WC-Webhook-Topic"}
DEFAULT_TOPIC = {"shopify": "orders/create", "woocommerce": "order.created"}


def post_platform(
    client,
    site,
    platform,
    order=None,
    raw: bytes | None = None,
    secret=None,
    signature=None,
    delivery_id=None,
    topic=None,
    content_type="application/json",
):
    """POST ``order`` (or ``raw`` bytes) to the site's ``platform`` webhook, signed as the
    platform signs (with the test secret, or ``secret``); ``signature=False`` sends none, and
    ``topic=False`` no topic header."""
    body = raw if raw is not None else json.dumps(order).encode()
    headers = {}
    if topic is not False:
        headers[TOPIC_HEADER[platform]] = topic or DEFAULT_TOPIC[platform]
    if signature is None:
        signature = platform_signature(secret or PLATFORM_SECRETS[platform], body)
    if signature is not False:
        headers[SIGNATURE_HEADER[platform]] = signature
    if delivery_id:
        headers[DELIVERY_HEADER[platform]] = delivery_id
    return client.post(
        f"/api/v1/sites/{site['site_key']}/integrations/{platform}/orders",
        data=body,
        headers=headers,
        content_type=content_type,
    )
