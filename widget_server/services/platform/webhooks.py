"""Outgoing webhooks to the Standard Webhooks specification: recorded in the change's
transaction, delivered outside it, retried with backoff over a day.

A service that announces a change inserts its deliveries with :func:`enqueue` (one statement) in
the same transaction as the change, so a rolled-back change announces nothing. Each delivery is
one message to one URL: the body ``{"type": "<event>", "timestamp": "<ISO-8601>", "data": {...}}``
(a response webhook in the ``slack`` format posts a Slack message instead), stored as it is sent.

The worker's ``deliver-webhooks`` job (or ``funnelcake deliver-webhooks``) posts the deliveries
that are due with the headers of the specification: ``webhook-id`` (the message's id, the same on
every attempt and redelivery), ``webhook-timestamp`` (this attempt's time, in seconds) and
``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`` keyed with the
site's ``whsec_`` secret; during a rotation a second signature with the previous secret follows,
space-separated). The older ``X-Funnelcake-Signature: sha256=<hex HMAC of the body with the site
secret>`` is still sent for the receivers written for it.

A 2xx marks a delivery delivered. Anything else is tried again after :data:`RETRY_DELAYS_S`
(5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; each ±20 %, or later when the receiver's
``Retry-After`` says so), 8 attempts over about 27 hours, then it is ``failed``; a 410 Gone fails
it at once (the receiver asks for no more). Due deliveries are claimed a batch at a time with one
``UPDATE`` that counts the attempt and leases the rows (``next_attempt_at`` moved past the time
the batch may take; on PostgreSQL the rows are picked ``FOR UPDATE SKIP LOCKED``), so several
senders never post one delivery at once, and a sender that dies leaves its batch to the next
after the lease. Their outcomes are written with one statement per batch.

Webhooks call public addresses only: an admin (or a stolen admin token) must not turn the server
into a client of its own network, its loopback services or a cloud metadata endpoint. The host is
resolved once per delivery, every address it answers is checked, and the connection goes to the
checked address (with the URL's host in ``Host`` and TLS SNI), so a name that changes its answer
between the check and the connection (DNS rebinding) reaches nothing new. Redirects are not
followed. ``FUNNELCAKE_WEBHOOK_ALLOWED_HOSTS`` lists the hosts and networks an operator allows
anyway (a receiver on the internal network).
"""

import base64
import hashlib
import hmac
import http.client
import json
import random
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from flask import current_app
from sqlalchemy import bindparam, insert, literal_column, select, update

from ...errors import NotFound
from ...extensions import db
from ...models import Site, WebhookDelivery
from ...models.sites import new_message_id, new_webhook_secret
from ...models.types import utcnow
from ...outbound import RefusedTarget, allowance_of, pinned_connection, resolve_target

#: Seconds before the next attempt after each failed one: the schedule Standard Webhooks gives
#: as an example, as Svix runs it. With the first attempt, 8 attempts over 27 h 35 min.
RETRY_DELAYS_S = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
MAX_ATTEMPTS = len(RETRY_DELAYS_S) + 1
#: Each delay is stretched or shrunk by up to this share, at random, so that deliveries failed
#: together (a receiver's outage) do not all come back at the same second.
JITTER = 0.2
#: A receiver's ``Retry-After`` may push the next attempt this far at most.
MAX_RETRY_AFTER_S = 24 * 3600
#: Seconds an attempt waits for the receiver's answer (the specification suggests 15 to 30).
TIMEOUT_S = 15.0
#: Deliveries one claim takes (one statement); their outcomes are written together.
CLAIM_BATCH = 20
#: After a rotation the previous secret signs too, for this long (receivers switch meanwhile).
ROTATION_OVERLAP = timedelta(hours=24)

_DELIVERIES = WebhookDelivery.__table__
_PENDING = _DELIVERIES.c.status == literal_column("'pending'")
_INSERT = insert(_DELIVERIES)
_jitter = random.SystemRandom()


# -- recording ------------------------------------------------------------------------------


def subscribed_urls(settings: dict | None, event: str, *own_urls: str | None) -> list[str]:
    """The URLs ``event`` goes to: the event's own URLs (a campaign's ``ab.webhook_url``, the
    site's ``stage_webhook_url``), then the site's ``settings.webhook`` when it subscribes to
    ``event``; each URL once. Reads nothing: the caller has the settings (the spin has them
    from the cached site configuration)."""
    hook = (settings or {}).get("webhook") or {}
    urls = list(own_urls)
    if event in hook.get("events", ()):
        urls.append(hook.get("url"))
    return list(dict.fromkeys(url for url in urls if url))


def envelope(event: str, data: dict, occurred_at: datetime) -> dict:
    """The body of a message: Standard Webhooks' recommended ``{type, timestamp, data}``."""
    return {"type": event, "timestamp": iso_timestamp(occurred_at), "data": data}


def iso_timestamp(at: datetime) -> str:
    """``2026-12-06T10:15:02.123456Z``: UTC, as the specification's examples write it."""
    return at.isoformat().replace("+00:00", "Z")


def delivery_row(
    site_id: int,
    url: str,
    event: str,
    payload: dict,
    now: datetime,
    key: str | None = None,
    message_id: str | None = None,
) -> dict:
    """The values of one new delivery, due at once (for an insert of many). One event sent to
    several URLs is one message: give each of its deliveries the same ``message_id``."""
    return {
        "site_id": site_id,
        "url": url,
        "event": event,
        "payload": payload,
        "message_id": message_id or new_message_id(),
        "attempts": 0,
        "status": "pending",
        "next_attempt_at": now,
        "created_at": now,
        "delivery_key": key,
    }


def enqueue(
    site_id: int, urls: Iterable[str], event: str, items: Iterable[tuple[dict, datetime]]
) -> int:
    """Record one delivery of each ``(data, occurred_at)`` to each URL, in one statement (an
    item's deliveries share its ``webhook-id``); nothing is sent here. How many were recorded
    (none without a URL)."""
    urls, now = list(urls), utcnow()
    rows = []
    for data, at in items if urls else ():
        message_id, payload = new_message_id(), envelope(event, data, at)
        rows += [
            delivery_row(site_id, url, event, payload, now, message_id=message_id) for url in urls
        ]
    if rows:
        db.session.connection().execute(_INSERT, rows)
    return len(rows)


# -- signing --------------------------------------------------------------------------------


def body_of(payload: dict) -> bytes:
    """The bytes posted (and signed): compact JSON, keys sorted."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, body: bytes) -> str:
    """The ``X-Funnelcake-Signature`` header value for ``body`` (the site secret, ``sk_``)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``webhook-signature`` entry: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``
    keyed with the bytes of a ``whsec_<base64>`` secret."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class SigningKeys:
    """What signs a site's deliveries: its ``whsec_`` secret, the previous one while a rotation
    is recent, and the site secret of the older header."""

    webhook_secret: str
    previous_webhook_secret: str | None
    rotated_at: datetime | None
    site_secret: str

    def secrets_at(self, now: datetime) -> list[str]:
        recent = self.rotated_at is not None and now < self.rotated_at + ROTATION_OVERLAP
        if recent and self.previous_webhook_secret:
            return [self.webhook_secret, self.previous_webhook_secret]
        return [self.webhook_secret]


def headers_for(
    keys: SigningKeys, message_id: str, event: str, delivery_id: int, body: bytes, now: datetime
) -> dict[str, str]:
    """The headers of one attempt, signed for its time."""
    timestamp = int(now.timestamp())
    signatures = [standard_signature(s, message_id, timestamp, body) for s in keys.secrets_at(now)]
    return {
        "Content-Type": "application/json",
        "User-Agent": "funnelcake-webhooks/2",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
        "X-Funnelcake-Event": event,
        "X-Funnelcake-Delivery": str(delivery_id),
        "X-Funnelcake-Signature": signature(keys.site_secret, body),
    }


def rotate_secret(site: Site) -> Site:
    """Give the site a new webhook secret; the old one keeps signing for
    :data:`ROTATION_OVERLAP` beside it (a second ``v1,`` entry), so receivers can switch
    without a delivery failing. Rotating again within that drops the oldest. Commits."""
    site.previous_webhook_secret = site.webhook_secret
    site.webhook_secret = new_webhook_secret()
    site.webhook_secret_rotated_at = utcnow()
    db.session.commit()
    return site


def previous_secret_valid_until(site: Site) -> datetime | None:
    """Until when deliveries also carry the previous secret's signature (None: they do not)."""
    if site.previous_webhook_secret is None or site.webhook_secret_rotated_at is None:
        return None
    until = site.webhook_secret_rotated_at + ROTATION_OVERLAP
    return until if until > utcnow() else None


# -- sending --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryRound:
    delivered: int
    failed: int
    retrying: int

    @property
    def attempted(self) -> int:
        return self.delivered + self.failed + self.retrying


@dataclass(frozen=True)
class Answer:
    """What one attempt came to: a 2xx (``error`` None), or why not; the receiver's status and
    ``Retry-After`` in seconds when it answered."""

    error: str | None
    status: int | None = None
    retry_after_s: float | None = None


def deliver_pending(
    limit: int = 100, timeout_s: float = TIMEOUT_S, now: datetime | None = None
) -> DeliveryRound:
    """Post up to ``limit`` due deliveries, longest due first, a claimed batch at a time; each
    is tried at most once per call (a failed one is due again seconds later at the soonest)."""
    delivered = failed = retrying = 0
    while limit > 0:
        batch = _claim(min(limit, CLAIM_BATCH), timeout_s, now or utcnow())
        if not batch:
            break
        limit -= len(batch)
        outcomes = []
        for claimed in batch:
            attempt_at = utcnow()
            answer = _post(claimed, timeout_s, attempt_at)
            outcome = outcome_of(claimed.attempts, answer, utcnow())
            outcomes.append({"b_id": claimed.id, **outcome})
            delivered += outcome["b_status"] == "delivered"
            failed += outcome["b_status"] == "failed"
            retrying += outcome["b_status"] == "pending"
        _record(outcomes)
    return DeliveryRound(delivered, failed, retrying)


@dataclass(frozen=True)
class Claimed:
    id: int
    url: str
    event: str
    payload: dict
    message_id: str
    #: Attempts made so far, this one included.
    attempts: int
    keys: SigningKeys


def _claim(size: int, timeout_s: float, now: datetime) -> list[Claimed]:
    """Take up to ``size`` due deliveries: one ``UPDATE`` counts their attempt and leases them
    for the time the batch may take, one read gets their bodies and the sites' keys; commits,
    so no lock is held while the receivers answer."""
    due = (
        select(_DELIVERIES.c.id)
        .where(_PENDING, _DELIVERIES.c.next_attempt_at <= now)
        .order_by(_DELIVERIES.c.next_attempt_at)
        .limit(size)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    lease = timedelta(seconds=size * (timeout_s + 5) + 60)
    ids = db.session.scalars(
        update(_DELIVERIES)
        .where(_DELIVERIES.c.id.in_(due.scalar_subquery()))
        .values(
            attempts=_DELIVERIES.c.attempts + 1,
            last_attempt_at=now,
            next_attempt_at=now + lease,
        )
        .returning(_DELIVERIES.c.id)
    ).all()
    if not ids:
        db.session.commit()
        return []
    rows = db.session.execute(
        select(
            _DELIVERIES.c.id,
            _DELIVERIES.c.url,
            _DELIVERIES.c.event,
            _DELIVERIES.c.payload,
            _DELIVERIES.c.message_id,
            _DELIVERIES.c.attempts,
            Site.webhook_secret,
            Site.previous_webhook_secret,
            Site.webhook_secret_rotated_at,
            Site.secret,
        )
        .join(Site, Site.id == _DELIVERIES.c.site_id)
        .where(_DELIVERIES.c.id.in_(ids))
        .order_by(_DELIVERIES.c.id)
    ).all()
    db.session.commit()
    return [
        Claimed(
            row.id,
            row.url,
            row.event,
            row.payload,
            row.message_id,
            row.attempts,
            SigningKeys(
                row.webhook_secret,
                row.previous_webhook_secret,
                row.webhook_secret_rotated_at,
                row.secret,
            ),
        )
        for row in rows
    ]


def outcome_of(attempts: int, answer: Answer, now: datetime) -> dict:
    """A delivery's state after its ``attempts``-th attempt got ``answer`` (the values
    :func:`_record` writes): delivered, failed for good, or pending until the next attempt."""
    outcome = {
        "b_status": "pending",
        "b_next_attempt_at": None,
        "b_delivered_at": None,
        "b_last_error": None if answer.error is None else answer.error[:500],
    }
    if answer.error is None:
        outcome.update(b_status="delivered", b_delivered_at=now)
    elif answer.status == 410 or attempts >= MAX_ATTEMPTS:
        outcome["b_status"] = "failed"
    else:
        outcome["b_next_attempt_at"] = now + timedelta(seconds=retry_delay_s(attempts, answer))
    return outcome


def retry_delay_s(attempts: int, answer: Answer) -> float:
    """Seconds until the attempt after the ``attempts``-th: the schedule's, with jitter, or the
    receiver's ``Retry-After`` when that is later (up to :data:`MAX_RETRY_AFTER_S`)."""
    delay = RETRY_DELAYS_S[attempts - 1] * _jitter.uniform(1 - JITTER, 1 + JITTER)
    if answer.retry_after_s is not None:
        delay = max(delay, min(answer.retry_after_s, MAX_RETRY_AFTER_S))
    return delay


#: One statement writes a batch's outcomes; ``status = 'pending'`` keeps a delivery that
#: something else finished meanwhile (a redelivery of a pending one, sent twice) finished.
_RECORD = (
    update(_DELIVERIES)
    .where(_DELIVERIES.c.id == bindparam("b_id"), _PENDING)
    .values(
        status=bindparam("b_status"),
        next_attempt_at=bindparam("b_next_attempt_at"),
        delivered_at=bindparam("b_delivered_at"),
        last_error=bindparam("b_last_error"),
    )
)


def _record(outcomes: list[dict]) -> None:
    db.session.connection().execute(_RECORD, outcomes)
    db.session.commit()


def _post(claimed: Claimed, timeout_s: float, now: datetime) -> Answer:
    """Post one attempt (nothing is sent to a refused address)."""
    body = body_of(claimed.payload)
    headers = headers_for(claimed.keys, claimed.message_id, claimed.event, claimed.id, body, now)
    try:
        target = resolve_target(claimed.url, allowance_of(current_app.config))
        connection = pinned_connection(target, timeout_s)
        try:
            connection.request("POST", target.path, body=body, headers=headers)
            answer = connection.getresponse()
            excerpt = answer.read(1024)
        finally:
            connection.close()
    except RefusedTarget as err:
        return Answer(f"refused: {err}")
    except (OSError, http.client.HTTPException, ValueError) as err:
        return Answer(f"{err.__class__.__name__}: {err}")
    if 200 <= answer.status < 300:
        return Answer(None, answer.status)
    retry_after = _seconds_from(answer.getheader("Retry-After"), now)
    if 300 <= answer.status < 400:
        error = f"HTTP {answer.status} (redirects are not followed)"
    elif answer.status == 410:
        error = "HTTP 410 Gone: the receiver wants no more deliveries; not retried"
    else:
        error = f"HTTP {answer.status}"
    said = _one_line(excerpt.decode("utf-8", errors="replace"))
    return Answer(f"{error}: {said}" if said else error, answer.status, retry_after)


def _seconds_from(retry_after: str | None, now: datetime) -> float | None:
    """``Retry-After`` in seconds from ``now``: a number of seconds or an HTTP date."""
    if not retry_after:
        return None
    value = retry_after.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None


def _one_line(text: str, limit: int = 200) -> str:
    """The start of a receiver's answer as one line of text (controls become spaces)."""
    plain = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    return " ".join(plain.split())[:limit]


# -- the delivery log -----------------------------------------------------------------------

#: Deliveries a page of the log shows at most.
LOG_LIMIT = 50


def deliveries_of(
    site_id: int, before: int | None = None, limit: int = LOG_LIMIT, status: str | None = None
) -> list[WebhookDelivery]:
    """A site's deliveries, newest first, older than the delivery ``before`` (the next page)."""
    query = select(WebhookDelivery).where(WebhookDelivery.site_id == site_id)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    return list(db.session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit)))


def get_delivery(delivery_id: int) -> WebhookDelivery:
    """:raise NotFound: no delivery of this id."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound(f"No webhook delivery {delivery_id}.")
    return delivery


def redeliver(delivery: WebhookDelivery) -> WebhookDelivery:
    """Send this message again now, with its ``webhook-id`` and body; commits.

    A pending delivery is made due now (it was waiting for a retry). A delivered or failed one
    is left as its record says and a copy is queued, due now, with a fresh set of attempts: the
    log keeps what happened to the first, and a delivery still in a sender's hands is never
    taken twice. Returns the delivery that will be sent.
    """
    now = utcnow()
    if delivery.status == "pending":
        delivery.next_attempt_at = now
        db.session.commit()
        return delivery
    copy = WebhookDelivery(
        site_id=delivery.site_id,
        url=delivery.url,
        event=delivery.event,
        payload=delivery.payload,
        message_id=delivery.message_id,
        attempts=0,
        status="pending",
        next_attempt_at=now,
        created_at=now,
    )
    db.session.add(copy)
    db.session.commit()
    return copy


def delivery_json(delivery: WebhookDelivery) -> dict:
    def at(value):
        return iso_timestamp(value) if value is not None else None

    return {
        "id": delivery.id,
        "site_id": delivery.site_id,
        "webhook_id": delivery.message_id,
        "event": delivery.event,
        "url": delivery.url,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "max_attempts": MAX_ATTEMPTS,
        "next_attempt_at": at(delivery.next_attempt_at) if delivery.status == "pending" else None,
        "last_attempt_at": at(delivery.last_attempt_at),
        "last_error": delivery.last_error,
        "created_at": at(delivery.created_at),
        "delivered_at": at(delivery.delivered_at),
        "payload": delivery.payload,
    }
