"""The public API is rate limited per client IP, answering 429 with Retry-After in JSON."""

import json

from tests.conftest import BASE_TEST_CONFIG
from widget_server import create_app
from widget_server.demo.store import DEMO_SITE_KEY, ensure_demo_site
from widget_server.extensions import db


def test_public_api_answers_429_with_retry_after(app, database_url):
    with app.app_context():
        ensure_demo_site(["https://shop.example"])
    limited = create_app(
        {
            **BASE_TEST_CONFIG,
            "DATABASE_URL": database_url,
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_PUBLIC": "3 per minute",
        }
    )
    client = limited.test_client()
    body = json.dumps({"visitor_id": "visitor-0001", "url": "https://shop.example/"})
    statuses = []
    for _ in range(4):
        response = client.post(
            f"/api/v1/sites/{DEMO_SITE_KEY}/decide",
            data=body,
            content_type="text/plain",
            headers={"Origin": "https://shop.example"},
            environ_base={"REMOTE_ADDR": "203.0.113.9"},
        )
        statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 429]
    assert int(response.headers["Retry-After"]) > 0
    assert response.json["error"]["code"] == "too_many_requests"
    other_ip = client.post(
        f"/api/v1/sites/{DEMO_SITE_KEY}/decide",
        data=body,
        content_type="text/plain",
        headers={"Origin": "https://shop.example"},
        environ_base={"REMOTE_ADDR": "203.0.113.10"},
    )
    assert other_ip.status_code == 200
    with limited.app_context():
        db.engine.dispose()
