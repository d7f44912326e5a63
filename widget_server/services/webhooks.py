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
import ipaddress
import json
import socket
import ssl
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import insert, select

from ..extensions import db
from ..models import Site, WebhookDelivery
from ..models.types import utcnow

MAX_ATTEMPTS = 8
TIMEOUT_S = 5.0
#: Names that always mean this machine, whatever a resolver says.
LOCAL_NAMES = ("localhost", "localhost.")
#: The well-known NAT64 prefix: its addresses stand for the IPv4 address in their last 32 bits.
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


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


# -- which addresses a webhook may call -------------------------------------------------------


class RefusedTarget(ValueError):
    """A webhook URL whose host is not a public address and not allowed by the operator."""


@dataclass(frozen=True)
class Allowance:
    """``FUNNELCAKE_WEBHOOK_ALLOWED_HOSTS``, parsed: host names and networks allowed anyway."""

    hostnames: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    def admits_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hostnames

    def admits(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """A public address, or one inside a network the operator listed."""
        plain = ipaddress.ip_address(str(address).split("%", 1)[0])
        return is_public(plain) or any(
            plain.version == network.version and plain in network for network in self.networks
        )


def allowance_of(config) -> Allowance:
    """The allowance of an app's configuration (``WEBHOOK_ALLOWED_HOSTS``, comma-separated)."""
    hostnames, networks = set(), []
    for entry in str(config.get("WEBHOOK_ALLOWED_HOSTS") or "").split(","):
        entry = entry.strip().strip("[]")
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hostnames.add(entry.lower().rstrip("."))
    return Allowance(frozenset(hostnames), tuple(networks))


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for a globally routable unicast address.

    ``is_global`` already excludes loopback, private, link-local, unspecified, shared (CGNAT
    100.64.0.0/10) and documentation ranges, but not multicast, and not IPv6 site-local; an IPv6
    address that embeds an IPv4 one (``::ffff:127.0.0.1``, 6to4 ``2002:7f00:1::``, NAT64
    ``64:ff9b::a00:1``) is judged by the IPv4 one.
    """
    if address.version == 6:
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64_PREFIX:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
        if address.is_site_local:
            return False
    return address.is_global and not (address.is_multicast or address.is_reserved)


def _literal_address(host: str):
    """The address a host names literally, in any form a C resolver reads (``127.1``,
    ``0x7f000001``, ``[::1]``), or None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def literal_refusal(url: str, allowance: Allowance) -> str | None:
    """Why ``url`` is refused without looking its host up (a literal address that is not public,
    or localhost), or None. Names are checked again, resolved, when a delivery is sent."""
    host = urlsplit(url).hostname
    if not host or allowance.admits_host(host):
        return None
    if host.lower() in LOCAL_NAMES or host.lower().rstrip(".").endswith(".localhost"):
        loopbacks = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
        if all(allowance.admits(address) for address in loopbacks):
            return None
        return (
            f"{host} is this server; webhooks call public addresses only "
            "(FUNNELCAKE_WEBHOOK_ALLOWED_HOSTS lists exceptions)."
        )
    address = _literal_address(host)
    if address is not None and not allowance.admits(address):
        return (
            f"{address} is not a public address; webhooks call public addresses only "
            "(FUNNELCAKE_WEBHOOK_ALLOWED_HOSTS lists exceptions)."
        )
    return None


@dataclass(frozen=True)
class Target:
    """Where one delivery goes: the URL's host and port, and the checked address to connect to."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


def resolve_target(url: str, allowance: Allowance) -> Target:
    """Resolve ``url``'s host once and check every address it answers.

    :raise RefusedTarget: when any address is not public and not allowed (a name answering
        both a public and a private address must not leave the choice to the connection).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedTarget(f"{url!r} is not an http(s) URL")
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise RefusedTarget(f"{host} does not resolve ({err})") from None
    addresses = list(dict.fromkeys(answer[4][0] for answer in answers))
    if not allowance.admits_host(host):
        for address in addresses:
            if not allowance.admits(ipaddress.ip_address(address)):
                raise RefusedTarget(
                    f"{host} resolves to {address}, which is not a public address "
                    "(FUNNELCAKE_WEBHOOK_ALLOWED_HOSTS lists exceptions)"
                )
    return Target(parts.scheme, host, port, path, addresses[0])


def pinned_connection(target: Target, timeout_s: float) -> http.client.HTTPConnection:
    """A connection to the checked address that never looks the host name up again; the name is
    kept for ``Host`` and, over HTTPS, for SNI and the certificate check."""
    if target.scheme == "https":
        connection = http.client.HTTPSConnection(
            target.host, target.port, timeout=timeout_s, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(target.host, target.port, timeout=timeout_s)
    # http.client opens its socket through this attribute (CPython's own tests replace it too).
    connection._create_connection = partial(_connect_to, target.address)
    return connection


def _connect_to(address: str, host_and_port, timeout, source_address=None) -> socket.socket:
    return socket.create_connection((address, host_and_port[1]), timeout, source_address)
