"""Fixtures shared by the service's tests: an app on SQLite and on PostgreSQL, clients, factories.

Every test that uses ``app`` runs once per database backend. PostgreSQL tests use a database of
their own, created from ``FUNNELCAKE_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``) and dropped afterwards, so parallel runs do not meet.
They skip when PostgreSQL is unreachable, unless ``FUNNELCAKE_REQUIRE_POSTGRES=1`` (CI) makes
that a failure.
"""

import os
import threading
import uuid

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

from widget_server import create_app
from widget_server.extensions import db, normalise_database_url
from widget_server.services.platform.tokens import create_token

POSTGRES_URL = os.environ.get(
    "FUNNELCAKE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("FUNNELCAKE_REQUIRE_POSTGRES") == "1"

BASE_TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret",
    "RATELIMIT_ENABLED": False,
    "CONFIG_CACHE_TTL_S": 0.0,
    "EVALUATE_INTERVAL_S": 0,
    "REDIS_URL": "",
}


def _postgres_database(request) -> str:
    """Create a throw-away PostgreSQL database and return its URL."""
    admin_url = normalise_database_url(POSTGRES_URL)
    try:
        engine = create_engine(
            admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 2}
        )
        with engine.connect() as conn:
            name = f"fc_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as err:  # any connection failure means "not here"
        message = f"PostgreSQL not reachable at {POSTGRES_URL}: {err.__class__.__name__}"
        if REQUIRE_POSTGRES:
            pytest.fail(message + " (FUNNELCAKE_REQUIRE_POSTGRES=1)")
        pytest.skip(message)

    def drop():
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    request.addfinalizer(drop)
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory):
    """A migrated database per backend for the session; tables are emptied after each test."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'funnelcake.db'}"
    else:
        url = _postgres_database(request)
    app = create_app({**BASE_TEST_CONFIG, "DATABASE_URL": url})
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        db.engine.dispose()
    return url


def empty_all_tables() -> None:
    # campaigns and variants point at each other; cut that link first (SQLite deletes in order).
    db.session.execute(text("UPDATE campaigns SET promoted_variant_id = NULL"))
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(text(f"DELETE FROM {table}"))
    db.session.commit()


@pytest.fixture
def app(database_url, tmp_path):
    """The app on one backend, inside an app context; its tables are emptied afterwards."""
    app = create_app({**BASE_TEST_CONFIG, "DATABASE_URL": database_url})
    app.instance_path = str(tmp_path)
    with app.app_context():
        yield app
        db.session.rollback()
        empty_all_tables()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class AdminClient:
    """The test client with an admin bearer token on every call."""

    def __init__(self, client, token):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path, **kwargs):
        return self.client.get(path, headers=self.headers, **kwargs)

    def post(self, path, json=None, **kwargs):
        return self.client.post(path, json=json, headers=self.headers, **kwargs)

    def patch(self, path, json=None, **kwargs):
        return self.client.patch(path, json=json, headers=self.headers, **kwargs)


@pytest.fixture
def admin(app, client):
    """An admin API client with a fresh token."""
    return AdminClient(client, create_token("tests"))


def survey_content(steps=None, **extra) -> dict:
    """A small valid survey: one single-choice question and one scale."""
    content = {
        "steps": steps
        or [
            {
                "id": "q1",
                "type": "single_choice",
                "question": "How did you find us?",
                "options": [
                    {"id": "search", "label": "Search"},
                    {"id": "friend", "label": "A friend"},
                ],
            },
            {
                "id": "q2",
                "type": "scale",
                "question": "How likely are you to buy?",
                "dimension": "intentional",
            },
        ],
        "thank_you": {"title": "Thanks!"},
    }
    content.update(extra)
    return content


@pytest.fixture
def make_site(admin):
    """Create a site through the admin API and return its JSON."""

    def make(name="Shop", origins=("https://shop.example",), **settings):
        response = admin.post(
            "/api/v1/admin/sites",
            json={
                "name": name,
                "allowed_origins": list(origins),
                "settings": settings,
            },
        )
        assert response.status_code == 201, response.json
        return response.json

    return make


@pytest.fixture
def make_campaign(admin):
    """Create (and by default start) a survey campaign through the admin API."""

    def make(site, start=True, variants=None, **fields):
        body = {
            "name": "Survey",
            "kind": "survey",
            "trigger": {"type": "immediate"},
            **fields,
            "variants": variants
            or [{"name": "A", "is_control": True, "content": survey_content()}],
        }
        response = admin.post(f"/api/v1/admin/sites/{site['id']}/campaigns", json=body)
        assert response.status_code == 201, response.json
        campaign = response.json
        if start:
            started = admin.post(f"/api/v1/admin/campaigns/{campaign['id']}/start")
            assert started.status_code == 200, started.json
            campaign = started.json
        return campaign

    return make


@pytest.fixture
def live_server(tmp_path):
    """The app served over HTTP on 127.0.0.1 in a thread, on its own SQLite file database.

    Yields an object with ``url`` and ``app``; the demo site is created, its origin allowed.
    """
    from widget_server.demo.store import ensure_demo_site

    url = f"sqlite:///{tmp_path / 'live.db'}"
    app = create_app({**BASE_TEST_CONFIG, "DATABASE_URL": url})
    app.instance_path = str(tmp_path)
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    with app.app_context():
        ensure_demo_site([base])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    class Live:
        pass

    live = Live()
    live.url, live.app = base, app
    yield live
    server.shutdown()
    thread.join(timeout=5)
    with app.app_context():
        db.engine.dispose()
