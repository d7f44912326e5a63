"""Slow clients do not take the production setup down (gunicorn with widget_server/gunicorn_conf).

A slow client opens a connection and sends its request a byte a second, never finishing it. Sync
workers serve one connection at a time, so a few such clients held every worker and ``/healthz``
answered after 36 s. The shipped configuration must keep answering while more slow clients than
workers are connected, and must cut them off once their time to send a request head is up.
"""

import select
import socket
import threading
import time
from types import SimpleNamespace

import pytest

from tests.helpers import ORIGIN, until
from tests.reliability.servers import (
    SHIPPED_CONFIG,
    Gunicorn,
    new_visitor_id,
    post_public,
    request,
    seed_site,
    worker_holding,
)
from widget_server import gunicorn_conf

WORKERS = 2
SLOW_CLIENTS = 3 * WORKERS


class SlowClient(threading.Thread):
    """Sends a request head one byte a second and never ends it; notes when the server hangs up."""

    HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 500

    def __init__(self, port: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.port = self.sock.getsockname()[1]
        self.stop = stop
        self.connected_at = time.monotonic()
        self.hung_up_after_s: float | None = None

    def run(self):
        try:
            for byte in self.HEAD:
                self.sock.sendall(bytes([byte]))
                # Wait a second for the next byte; a readable socket means the server answered
                # or closed the connection: either way it no longer waits for this client.
                readable, _, _ = select.select([self.sock], [], [], 1.0)
                if readable or self.stop.is_set():
                    break
        except OSError:
            pass
        if not self.stop.is_set():
            self.hung_up_after_s = time.monotonic() - self.connected_at
        self.sock.close()


@pytest.fixture
def slow_clients():
    """Start slow clients against a server: ``start(server)`` returns them, all connected."""
    stop = threading.Event()
    started: list[SlowClient] = []

    def start(server: Gunicorn, count: int = SLOW_CLIENTS) -> list[SlowClient]:
        clients = [SlowClient(server.port, stop) for _ in range(count)]
        for client in clients:
            client.start()
        started.extend(clients)
        return clients

    yield start
    stop.set()
    for client in started:
        client.join(timeout=5)


def wait_until_held(server: Gunicorn, clients: list[SlowClient], timeout_s: float = 3.0) -> None:
    """Wait until a worker holds the server side of every slow client's connection."""
    held = until(
        lambda: all(worker_holding(server, client.port) is not None for client in clients),
        timeout_s=timeout_s,
    )
    assert held, "the workers did not take every slow connection"


@pytest.fixture(scope="module")
def shipped(module_database_url):
    """gunicorn with the shipped configuration (2 workers) on a database with a site."""
    site, campaign = seed_site(module_database_url, origins=[ORIGIN])
    with Gunicorn(module_database_url, workers=WORKERS, env=SHIPPED_CONFIG) as server:
        yield SimpleNamespace(server=server, site=site, campaign=campaign)


def test_service_answers_within_a_second_while_slow_clients_outnumber_workers(
    shipped, slow_clients
):
    clients = slow_clients(shipped.server)
    wait_until_held(shipped.server, clients)

    for _ in range(3):
        health = request(shipped.server.base_url, "GET", "/healthz", timeout_s=1)
        ready = request(shipped.server.base_url, "GET", "/readyz", timeout_s=1)
        offer = post_public(
            shipped.server.base_url,
            shipped.site["site_key"],
            "decide",
            {"visitor_id": new_visitor_id("fast"), "url": f"{ORIGIN}/"},
            origin=ORIGIN,
            timeout_s=1,
        )
        assert (health.status, ready.status, offer.status) == (200, 200, 200)
        assert max(health.elapsed_s, ready.elapsed_s, offer.elapsed_s) < 1.0
        assert [c["campaign_id"] for c in offer.json()["campaigns"]] == [shipped.campaign["id"]]
    # The slow clients were connected and held by the workers the whole time.
    assert [c.hung_up_after_s for c in clients] == [None] * len(clients)
    assert all(worker_holding(shipped.server, c.port) is not None for c in clients)


def test_client_that_never_finishes_its_request_head_is_disconnected(shipped, slow_clients):
    clients = slow_clients(shipped.server, count=2)
    limit_s = gunicorn_conf.keepalive

    until(
        lambda: all(c.hung_up_after_s is not None for c in clients),
        timeout_s=limit_s + 5,
        interval_s=0.2,
    )

    for client in clients:
        assert client.hung_up_after_s is not None, "a slow client was never disconnected"
        assert limit_s - 0.5 <= client.hung_up_after_s <= limit_s + 2


def test_sync_workers_without_the_configuration_are_starved_by_the_same_clients(
    tmp_path, slow_clients
):
    """The control: the attack is real against gunicorn's defaults, so the test above can fail."""
    with Gunicorn(f"sqlite:///{tmp_path / 'funnelcake.db'}", workers=WORKERS) as server:
        slow_clients(server)
        time.sleep(0.5)
        with pytest.raises(OSError):  # a timeout: nobody reads the request
            request(server.base_url, "GET", "/healthz", timeout_s=1)
