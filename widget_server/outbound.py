"""Which addresses the server may call, and connections pinned to the address that was checked.

Webhooks call public addresses only: an admin (or a stolen admin token) must not turn the server
into a client of its own network, its loopback services or a cloud metadata endpoint. The API
refuses a webhook URL whose host is a literal non-public address when it is saved
(:func:`literal_refusal`, no lookup); a delivery resolves the host once, checks every address it
answers (:func:`resolve_target`) and connects to the checked one (:func:`pinned_connection`).
``FUNNELCAKE_WEBHOOK_ALLOWED_HOSTS`` lists the hosts and networks an operator allows anyway.
Pure network policy: no Flask, no database.
"""

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit

#: Names that always mean this machine, whatever a resolver says.
LOCAL_NAMES = ("localhost", "localhost.")
#: The well-known NAT64 prefix: its addresses stand for the IPv4 address in their last 32 bits.
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


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
