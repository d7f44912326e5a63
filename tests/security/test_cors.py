"""CORS: only a site's allowed origins may call its public API from a browser, or read answers.

A refused origin gets a 403 before anything is stored: the refusal is the server's, not only
the browser's (which would still have let the request through and hidden the answer).
"""

import pytest
from sqlalchemy import func, select

from tests.helpers import ORIGIN, event, post_public
from widget_server.extensions import db
from widget_server.models import Event, Visitor

REFUSED_ORIGINS = [
    "https://evil.example",
    "https://shop.example.evil.example",  # the allowed origin as a prefix
    "https://evilshop.example",  # ... as a suffix
    "http://shop.example",  # another scheme
    "https://shop.example:8443",  # another port
    "null",  # sandboxed iframes, file:// pages
]

BODIES = {
    "decide": {"visitor_id": "visitor-0001", "url": "https://shop.example/"},
    "events": {"events": [event("convert", "visitor-0001", name="signup")]},
    "identify": {"visitor_id": "visitor-0001", "customer_id": "c-1"},
    "spin": {"visitor_id": "visitor-0001", "campaign_id": 1},
}


def _stored_nothing():
    assert db.session.scalar(select(func.count()).select_from(Event)) == 0
    assert db.session.scalar(select(func.count()).select_from(Visitor)) == 0


@pytest.mark.parametrize("origin", REFUSED_ORIGINS)
@pytest.mark.parametrize("endpoint", sorted(BODIES))
def test_origin_not_on_the_list_is_refused_and_nothing_stored(client, make_site, endpoint, origin):
    site = make_site(origins=[ORIGIN])
    response = post_public(client, site, endpoint, BODIES[endpoint], origin=origin)
    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Origin" in response.headers["Vary"]
    _stored_nothing()


def test_allowed_origin_reads_the_answer(client, make_site):
    site = make_site(origins=[ORIGIN])
    response = post_public(client, site, "events", BODIES["events"], origin=ORIGIN)
    assert response.status_code == 202
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in response.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in response.headers  # no cookies, ever


def test_one_sites_origin_cannot_use_another_sites_key(client, make_site):
    make_site("Mine", origins=["https://mine.example"])
    theirs = make_site("Theirs", origins=["https://theirs.example"])
    response = post_public(
        client, theirs, "decide", BODIES["decide"], origin="https://mine.example"
    )
    assert response.status_code == 403


@pytest.mark.parametrize("origin", REFUSED_ORIGINS)
def test_preflight_from_a_refused_origin_gets_no_cors_headers(client, make_site, origin):
    site = make_site(origins=[ORIGIN])
    response = client.options(
        f"/api/v1/sites/{site['site_key']}/decide",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers


def test_preflight_from_the_allowed_origin_is_answered(client, make_site):
    site = make_site(origins=[ORIGIN])
    response = client.options(
        f"/api/v1/sites/{site['site_key']}/decide",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_admin_api_never_answers_cors(admin, make_site):
    # The admin API is not for browsers on other sites: no preflight passes, no answer is readable.
    make_site()
    for response in (
        admin.client.get("/api/v1/admin/sites", headers={**admin.headers, "Origin": ORIGIN}),
        admin.client.options(
            "/api/v1/admin/sites",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
        ),
    ):
        assert "Access-Control-Allow-Origin" not in response.headers


@pytest.fixture
def limited(make_app):
    """The app with rate limits on: 2 public calls, 2 spins per minute."""
    return make_app(
        RATELIMIT_ENABLED=True, RATELIMIT_PUBLIC="2 per minute", RATELIMIT_SPIN="2 per minute"
    )


def test_429_is_readable_by_the_allowed_origin_only(limited, make_site):
    site = make_site(origins=[ORIGIN])
    client = limited.test_client()
    for _ in range(2):
        allowed = post_public(
            client, site, "decide", BODIES["decide"], ORIGIN, address="203.0.113.5"
        )
        assert allowed.status_code == 200
    refused = post_public(client, site, "decide", BODIES["decide"], ORIGIN, address="203.0.113.5")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert refused.json["error"]["code"] == "too_many_requests"
    other = post_public(
        client, site, "decide", BODIES["decide"], "https://evil.example", address="203.0.113.5"
    )
    assert other.status_code == 429
    assert "Access-Control-Allow-Origin" not in other.headers


def test_spins_are_limited_per_visitor_whatever_the_address(limited, make_site):
    # Guessing codes by spinning from many addresses as one visitor runs into the visitor limit.
    site = make_site(origins=[ORIGIN])
    client = limited.test_client()
    body = {"visitor_id": "visitor-0001", "campaign_id": 1}
    statuses = [
        post_public(client, site, "spin", body, ORIGIN, address=f"203.0.113.{i}").status_code
        for i in range(1, 4)
    ]
    assert 429 not in statuses[:2] and statuses[2] == 429
