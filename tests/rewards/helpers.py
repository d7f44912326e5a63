"""Calling the wheel and the orders webhook the way the snippet and a shop back end do."""

import hashlib
import hmac
import json

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
