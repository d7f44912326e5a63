"""The public API is rate limited per client IP, answering 429 with Retry-After in JSON."""

from tests.helpers import post_public
from widget_server.demo.store import DEMO_SITE_KEY, ensure_demo_site


def test_public_api_answers_429_with_retry_after(app, make_app):
    ensure_demo_site(["https://shop.example"])
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_PUBLIC="3 per minute").test_client()
    site = {"site_key": DEMO_SITE_KEY}
    body = {"visitor_id": "visitor-0001", "url": "https://shop.example/"}
    statuses = []
    for _ in range(4):
        response = post_public(client, site, "decide", body, address="203.0.113.9")
        statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 429]
    assert int(response.headers["Retry-After"]) > 0
    assert response.json["error"]["code"] == "too_many_requests"
    other_ip = post_public(client, site, "decide", body, address="203.0.113.10")
    assert other_ip.status_code == 200
