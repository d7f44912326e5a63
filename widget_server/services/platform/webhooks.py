"""Outgoing signed webhooks: recorded in the request's transaction, delivered outside it.

A service that wants to call a webhook inserts WebhookDelivery rows with :func:`enqueue` in the
same transaction as the change they announce, so a rolled-back change announces nothing. The
``funnelcake deliver-webhooks`` command (one round, or ``--every`` seconds) posts them:
body = the payload as compact JSON, header ``X-Funnelcake-Signature: sha256=<hex HMAC-SHA256 of
the body with the site secret>``. A 2xx marks a delivery done; anything else is retried on later
rounds (one try per delivery per round) until ``MAX_ATTEMPTS``, then it is marked ``failed``.
On PostgreSQL rows are claimed with ``FOR UPDATE SKIP LOCKED``, so several senders never post
one delivery twice.

Webhooks call public addresses only: an admin (or a stolen admin token) must not turn the server
into a client of its own network, its loopback services or a cloud metadata endpoint. The host is
resolved once per delivery, every address it answers is checked, and the connection goes to the
checked address (with the URL's host in ``Host`` and TLS SNI), so a name that changes its answer
between the check and the connection (DNS rebinding) reaches nothing new. Redirects are not
followed. ``FUNNELCAKE_WEBHOOK_ALLOWED_HOSTS`` lists the hosts and networks an operator allows
anyway (a receiver on the internal network).
"""

import hashlib
import hmac
import http.client
import json
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import insert, select

from ...extensions import db
from ...models import Site, WebhookDelivery
from ...models.types import utcnow
from ...outbound import RefusedTarget, allowance_of, pinned_connection, resolve_target

MAX_ATTEMPTS = 8
TIMEOUT_S = 5.0


def enqueue(site_id: int, url: str, event: str, payloads: list[dict]) -> None:
    """Record one pending delivery per payload (one statement); nothing is sent here."""
    if payloads:
        db.session.execute(
            insert(WebhookDelivery),
            [
                {
                    "site_id": site_id,
                    "url": url,
                    "event": event,
                    "payload": payload,
                    "attempts": 0,
                    "status": "pending",
                    "created_at": utcnow(),
                }
                for payload in payloads
            ],
        )


def body_of(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, body: bytes) -> str:
    """The ``X-Funnelcake-Signature`` header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class DeliveryRound:
    delivered: int
    failed: int
    retrying: int


def deliver_pending(limit: int = 100, timeout_s: float = TIMEOUT_S) -> DeliveryRound:
    """Post up to ``limit`` pending deliveries, oldest first, each in its own transaction."""
    delivered = failed = retrying = 0
    tried: list[int] = []
    for _ in range(limit):
        claimed = _claim_one(tried)
        if claimed is None:
            break
        delivery, secret = claimed
        tried.append(delivery.id)
        error = _post(delivery, secret, timeout_s)
        delivery.attempts += 1
        if error is None:
            delivery.status = "delivered"
            delivery.delivered_at = utcnow()
            delivery.last_error = None
            delivered += 1
        else:
            delivery.last_error = error[:500]
            if delivery.attempts >= MAX_ATTEMPTS:
                delivery.status = "failed"
                failed += 1
            else:
                retrying += 1
        db.session.commit()
    return DeliveryRound(delivered, failed, retrying)


def _claim_one(tried: list[int]):
    """The oldest pending delivery not yet tried in this round (each is tried once a round)."""
    query = (
        select(WebhookDelivery, Site.secret)
        .join(Site, Site.id == WebhookDelivery.site_id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.id.not_in(tried))
        .order_by(WebhookDelivery.attempts, WebhookDelivery.id)
        .limit(1)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=WebhookDelivery, skip_locked=True)
    row = db.session.execute(query).first()
    return None if row is None else (row[0], row[1])


def _post(delivery: WebhookDelivery, secret: str, timeout_s: float) -> str | None:
    """None on a 2xx answer, else what went wrong (nothing is sent to a refused address)."""
    body = body_of(delivery.payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "funnelcake-webhooks/1",
        "X-Funnelcake-Event": delivery.event,
        "X-Funnelcake-Delivery": str(delivery.id),
        "X-Funnelcake-Signature": signature(secret, body),
    }
    try:
        target = resolve_target(delivery.url, allowance_of(current_app.config))
        connection = pinned_connection(target, timeout_s)
        try:
            connection.request("POST", target.path, body=body, headers=headers)
            answer = connection.getresponse()
            answer.read(1024)
        finally:
            connection.close()
    except RefusedTarget as err:
        return f"refused: {err}"
    except (OSError, http.client.HTTPException, ValueError) as err:
        return f"{err.__class__.__name__}: {err}"
    if 200 <= answer.status < 300:
        return None
    if 300 <= answer.status < 400:
        return f"HTTP {answer.status} (redirects are not followed)"
    return f"HTTP {answer.status}"
