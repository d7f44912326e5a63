"""Fixtures shared by the service's tests: an app on SQLite and on PostgreSQL, clients, factories,
a live server, a browser and a webhook receiver. Plain helpers are in ``tests/helpers.py``.

Every test that uses ``app`` runs once per database backend. PostgreSQL tests use a database of
their own, created from ``FUNNELCAKE_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``) and dropped afterwards, so parallel runs do not meet.
They skip when PostgreSQL is unreachable, unless ``FUNNELCAKE_REQUIRE_POSTGRES=1`` (CI) makes
that a failure.
"""

import os
import shutil
import threading
import uuid
from datetime import timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import create_engine, text

from tests.helpers import (
    BACKENDS,
    POSTGRES_URL,
    AdminClient,
    configured_app,
    create_campaign,
    create_site,
    migrate,
    postgres_missing,
    serving,
    serving_app,
)
from widget_server.extensions import db, normalise_database_url
from widget_server.models.types import utcnow
from widget_server.services.funnel import figures
from widget_server.services.platform.tokens import create_token

# --- databases and apps -------------------------------------------------------------------------


def _postgres_database(request) -> str:
    """Create a throw-away PostgreSQL database, dropped after ``request``'s scope; its URL."""
    admin_url = normalise_database_url(POSTGRES_URL)
    try:
        engine = create_engine(
            admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 2}
        )
        with engine.connect() as conn:
            name = f"fc_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as err:  # any connection failure means "not here"
        postgres_missing(f"PostgreSQL not reachable at {POSTGRES_URL}: {err.__class__.__name__}")

    def drop():
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    request.addfinalizer(drop)
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _migrated_database(request, tmp_path_factory) -> str:
    """A new migrated database on the backend ``request.param`` names, for its fixture's scope."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'funnelcake.db'}"
    else:
        url = _postgres_database(request)
    migrate(url)
    return url


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory):
    """A migrated database per backend for the session; ``app`` empties its tables after each
    test."""
    return _migrated_database(request, tmp_path_factory)


@pytest.fixture(scope="module", params=BACKENDS)
def module_database_url(request, tmp_path_factory):
    """A migrated database per backend for one module's servers (gunicorn): nothing empties it,
    what one test stores is there for the next."""
    return _migrated_database(request, tmp_path_factory)


def empty_all_tables() -> None:
    """Every table as in a new database: empty, on PostgreSQL no page, and ids counting from 1.

    On PostgreSQL only the tables with a page are truncated (one written to since it was last
    truncated, rolled back or not): a ``TRUNCATE`` costs a few milliseconds per table whether
    it held anything or not (about 90 ms for all of them, after every test), and a test writes
    to a handful.
    """
    # campaigns and variants point at each other; cut that link first (SQLite deletes in order).
    db.session.execute(text("UPDATE campaigns SET promoted_variant_id = NULL"))
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        written = db.session.scalars(
            text(
                "SELECT relname FROM pg_class WHERE relname = ANY(:tables)"
                " AND relnamespace = 'public'::regnamespace AND pg_relation_size(oid) > 0"
            ),
            {"tables": tables},
        ).all()
        if written:
            db.session.execute(text(f"TRUNCATE {', '.join(written)} CASCADE"))
        # Ids restart in every table, as TRUNCATE ... RESTART IDENTITY would restart them.
        db.session.execute(
            text(
                "SELECT setval(oid::regclass, 1, false) FROM pg_class"
                " WHERE relkind = 'S' AND relnamespace = 'public'::regnamespace"
            )
        )
    else:
        for table in tables:
            db.session.execute(text(f"DELETE FROM {table}"))
    db.session.commit()


@pytest.fixture
def app(database_url, tmp_path):
    """The app on one backend, inside an app context; its tables are emptied afterwards."""
    app = configured_app(database_url)
    app.instance_path = str(tmp_path)
    with app.app_context():
        yield app
        db.session.rollback()
        empty_all_tables()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def make_app(app, database_url, tmp_path):
    """Make more apps on the test's database, with other settings (``make_app(RATELIMIT_ENABLED=
    True)``); their connections are closed afterwards.

    They are made after ``app``: the rate limiter is one object, and the app made last decides
    whether limits are on.
    """
    made = []

    def make(**settings):
        other = configured_app(database_url, **settings)
        other.instance_path = str(tmp_path)
        made.append(other)
        return other

    yield make
    for other in made:
        with other.app_context():
            db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# --- made through the admin API -----------------------------------------------------------------


@pytest.fixture
def admin(app, client):
    """An admin API client with a fresh token."""
    return AdminClient(client, create_token("tests"))


@pytest.fixture
def make_site(admin):
    """Create a site through the admin API and return its JSON (``tests.helpers.create_site``)."""
    return partial(create_site, admin)


@pytest.fixture
def make_campaign(admin):
    """Create (and by default start) a survey campaign through the admin API
    (``tests.helpers.create_campaign``)."""
    return partial(create_campaign, admin)


# --- clocks -------------------------------------------------------------------------------------


class Clock:
    """A frozen UTC clock that moves only when told."""

    def __init__(self):
        self.now = utcnow()

    def __call__(self):
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    """The clock the funnel figures' snapshots (and the admin page's age of them) read, frozen."""
    frozen = Clock()
    monkeypatch.setattr(figures, "utcnow", frozen)
    return frozen


# --- servers ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory):
    """A migrated SQLite database file; each live server starts on a copy (migrating is slow)."""
    path = tmp_path_factory.mktemp("migrated") / "funnelcake.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def live_server(tmp_path, migrated_sqlite_file):
    """The app served over HTTP on 127.0.0.1 in a thread, on its own SQLite file database.

    Yields an object with ``url`` and ``app``; the demo site is created, its origin allowed.
    """
    from widget_server.demo.store import ensure_demo_site

    database = tmp_path / "live.db"
    shutil.copy(migrated_sqlite_file, database)
    app = configured_app(f"sqlite:///{database}")
    app.instance_path = str(tmp_path)

    class Live:
        pass

    with serving_app(app) as server:
        live = Live()
        live.url, live.app = f"http://127.0.0.1:{server.server_port}", app
        with app.app_context():
            ensure_demo_site([live.url])
        yield live
    with app.app_context():
        db.engine.dispose()


class WebhookReceiver:
    """What a webhook receiver got: ``received`` lists ``(headers, body)`` of each POST; it
    answers ``status`` with ``body``, and only once ``answering`` is set (clear it to make it
    hang)."""

    def __init__(self):
        self.received: list[tuple[dict, bytes]] = []
        self.status = 200
        self.body = b""
        self.answering = threading.Event()
        self.answering.set()
        self.url = ""


class _WebhookHandler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers["Content-Length"]))
        receiver.received.append((dict(self.headers), body))
        receiver.answering.wait(30)
        self.send_response(receiver.status)
        self.send_header("Content-Length", str(len(receiver.body)))
        self.end_headers()
        self.wfile.write(receiver.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_receiver(app):
    """A webhook receiver on 127.0.0.1, which the operator setting allows (webhooks call public
    addresses only by default); its ``url`` takes any path after it."""
    app.config["WEBHOOK_ALLOWED_HOSTS"] = "127.0.0.1"
    receiver = WebhookReceiver()
    server = HTTPServer(("127.0.0.1", 0), _WebhookHandler)
    server.receiver = receiver
    receiver.url = f"http://127.0.0.1:{server.server_port}/hook"
    with serving(server):
        try:
            yield receiver
        finally:
            receiver.answering.set()  # a hanging answer would hold the server's shutdown


# --- the browser --------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright, shared by the tests of a module."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no {CHROMIUM} (make test installs it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser):
    """Open a page in a fresh context (its own storage), closed after the test.

    ``page.errors`` collects the uncaught exceptions the page saw, ``page.console_errors`` its
    console errors (a CSP refusal is one).
    """
    contexts = []

    def make(**context_options):
        context = browser.new_context(**context_options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.errors, page.console_errors = [], []
        page.on("pageerror", lambda error: page.errors.append(str(error)))

        def on_console(message):
            # The demo pages have no favicon; Chromium reports its 404 as a console error.
            if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
                page.console_errors.append(message.text)

        page.on("console", on_console)
        return page

    yield make
    for context in contexts:
        context.close()
