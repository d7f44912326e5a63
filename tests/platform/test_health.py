"""Health: ``/healthz`` and ``/readyz`` answer; a database that is down or saturated answers 503
with Retry-After, never a 500 or a hang."""

import pytest

from tests.helpers import configured_app, decide, post_public
from widget_server.extensions import db


def test_health_endpoints(client):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json == {
        "status": "ready",
        "events": {"pending_events": 0, "oldest_pending_age_s": 0.0},
    }


def assert_unavailable(response):
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert response.get_json()["error"]["code"] == "unavailable"


def test_every_pooled_connection_busy_answers_503(make_app, make_site):
    site = make_site()
    app = make_app(DB_POOL_SIZE=1, DB_MAX_OVERFLOW=0, DB_POOL_TIMEOUT_S=0.2)
    with app.app_context():
        held = db.engine.connect()  # the pool's only connection, busy elsewhere
        try:
            assert_unavailable(decide(app.test_client(), site))
        finally:
            held.close()
        # Once the connection is free again, the same request is served.
        assert decide(app.test_client(), site).status_code == 200


@pytest.mark.parametrize("path", ["decide", "events", "identify", "spin"])
def test_unreachable_postgresql_answers_503(path, tmp_path):
    # Nothing listens on port 9: the connection is refused at once.
    app = configured_app("postgresql://funnelcake@127.0.0.1:9/none")
    app.instance_path = str(tmp_path)
    site = {"site_key": "pk_any"}
    body = {"visitor_id": "v-1", "url": "https://shop.example/"}
    assert_unavailable(post_public(app.test_client(), site, path, body))
    with app.app_context():
        db.engine.dispose()
