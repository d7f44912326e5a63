"""Rate limits under gunicorn: with Redis configured, two workers share one limit.

Requests are pinned to workers: a request whose last header line is held back keeps the sync
worker that accepted it waiting, so the next connection must go to the other worker. Fifteen
such pairs send exactly fifteen requests through each worker.
"""

import json
import random
import uuid

import flask
import pytest

from tests.helpers import ORIGIN, TEST_REDIS_URL, free_port, migrate, redis_or_skip
from tests.reliability.servers import Gunicorn, HalfSentRequest, seed_site
from widget_server.extensions import client_ip, limiter

REDIS_URL = TEST_REDIS_URL
LIMIT = 10
PAIRS = 15


def _redis_or_skip():
    return redis_or_skip(REDIS_URL)


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('limits') / 'funnelcake.db'}"
    migrate(url)
    site, _ = seed_site(url, origins=[ORIGIN], campaign=False)
    return url, site


def _limited_server(url, redis_url=""):
    return Gunicorn(
        url,
        workers=2,
        env={
            "FUNNELCAKE_RATELIMIT_ENABLED": "true",
            "FUNNELCAKE_RATELIMIT_PUBLIC": f"{LIMIT} per minute",
            "FUNNELCAKE_REDIS_URL": redis_url,
            # The made-up client addresses arrive in X-Forwarded-For, as from one proxy.
            "FUNNELCAKE_TRUSTED_PROXY_HOPS": "1",
        },
    )


def _pinned_pairs(server, site) -> tuple[list[tuple[int, dict]], dict[int, int], str]:
    """Send PAIRS pairs of decides from one (made-up) client address, one per worker each."""
    address = f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"
    body = json.dumps({"visitor_id": f"v-{uuid.uuid4().hex[:12]}", "url": ORIGIN + "/"}).encode()
    headers = {"Content-Type": "text/plain", "Origin": ORIGIN, "X-Forwarded-For": address}
    path = f"/api/v1/sites/{site['site_key']}/decide"
    answers, per_worker = [], {}
    for _ in range(PAIRS):
        first = HalfSentRequest(server, "POST", path, body, headers)
        first_worker = first.worker()
        second = HalfSentRequest(server, "POST", path, body, headers)
        second_worker = second.worker()
        assert first_worker != second_worker
        for request, worker in ((first, first_worker), (second, second_worker)):
            answers.append(request.finish())
            per_worker[worker] = per_worker.get(worker, 0) + 1
    return answers, per_worker, address


def test_two_workers_share_one_limit_in_redis(shop_db):
    redis_client = _redis_or_skip()
    url, site = shop_db
    with _limited_server(url, REDIS_URL) as server:
        answers, per_worker, address = _pinned_pairs(server, site)
    assert sorted(per_worker.values()) == [PAIRS, PAIRS]  # both workers served
    statuses = [status for status, _ in answers]
    assert statuses.count(200) == LIMIT
    assert statuses.count(429) == 2 * PAIRS - LIMIT
    assert statuses[:LIMIT] == [200] * LIMIT  # the limit is reached once, whoever serves
    for status, headers in answers:
        if status == 429:
            assert int(headers["retry-after"]) > 0
            assert headers["access-control-allow-origin"] == ORIGIN  # the snippet can read it
    # The counter lives in Redis, keyed by the client address.
    assert any(address in key.decode() for key in redis_client.scan_iter(match="*LIMITER*"))


def test_without_redis_each_worker_counts_alone(shop_db):
    # The documented fallback (no FUNNELCAKE_REDIS_URL): in-process counters, so N workers let
    # N times the limit through. This is why production sets FUNNELCAKE_REDIS_URL.
    url, site = shop_db
    with _limited_server(url) as server:
        answers, per_worker, _ = _pinned_pairs(server, site)
    statuses = [status for status, _ in answers]
    assert sorted(per_worker.values()) == [PAIRS, PAIRS]
    assert statuses.count(200) == 2 * LIMIT


def decides_with_forwarded_addresses(client, site) -> list[int]:
    """Three decides from one address (203.0.113.77), each naming another in X-Forwarded-For."""
    body = json.dumps({"visitor_id": "visitor-0001", "url": ORIGIN + "/"})
    return [
        client.post(
            f"/api/v1/sites/{site['site_key']}/decide",
            data=body,
            content_type="text/plain",
            headers={"Origin": ORIGIN, "X-Forwarded-For": f"198.51.100.{i}"},
            environ_base={"REMOTE_ADDR": "203.0.113.77"},
        ).status_code
        for i in range(3)
    ]


@pytest.mark.parametrize("hops, expected", [(0, [200, 200, 429]), (1, [200, 200, 200])])
def test_forwarded_for_counts_only_behind_a_trusted_proxy(app, make_app, make_site, hops, expected):
    # Exposed directly (0 trusted hops), a client naming a new address in X-Forwarded-For on
    # every call is still one client. Behind one proxy, the proxy's header names the client.
    site = make_site(origins=[ORIGIN])
    limited = make_app(
        RATELIMIT_ENABLED=True, RATELIMIT_PUBLIC="2 per minute", TRUSTED_PROXY_HOPS=hops
    )
    statuses = decides_with_forwarded_addresses(limited.test_client(), site)
    assert statuses == expected


def test_forged_forwarded_for_is_ignored_by_default(app, make_app, make_site):
    # No TRUSTED_PROXY_HOPS set: a client's X-Forwarded-For (or -Proto) changes neither the
    # address requests are keyed on nor the address the app sees, so it cannot dodge a limit.
    site = make_site(origins=[ORIGIN])
    limited = make_app(RATELIMIT_ENABLED=True, RATELIMIT_PUBLIC="2 per minute")
    assert limited.config["TRUSTED_PROXY_HOPS"] == 0  # the default

    @limited.get("/test-only/client")
    @limiter.exempt
    def seen_client():
        seen = flask.request
        return {"key": client_ip(), "remote_addr": seen.remote_addr, "scheme": seen.scheme}

    client = limited.test_client()
    forged = {"X-Forwarded-For": "198.51.100.1", "X-Forwarded-Proto": "https"}
    seen = client.get(
        "/test-only/client", headers=forged, environ_base={"REMOTE_ADDR": "203.0.113.77"}
    ).json
    statuses = decides_with_forwarded_addresses(client, site)
    assert seen == {"key": "203.0.113.77", "remote_addr": "203.0.113.77", "scheme": "http"}
    assert statuses == [200, 200, 429]


def test_unreachable_redis_serves_requests_unlimited(app, make_app, make_site):
    # Availability over limiting: a Redis outage must not take the storefronts' popups down.
    site = make_site(origins=[ORIGIN])
    limited = make_app(
        RATELIMIT_ENABLED=True,
        RATELIMIT_PUBLIC="1 per minute",
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    client = limited.test_client()
    body = json.dumps({"visitor_id": "visitor-0001", "url": ORIGIN + "/"})
    statuses = [
        client.post(
            f"/api/v1/sites/{site['site_key']}/decide",
            data=body,
            content_type="text/plain",
            headers={"Origin": ORIGIN},
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 200]
