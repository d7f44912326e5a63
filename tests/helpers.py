"""Plain helpers the tests share (their fixtures are in ``conftest.py``).

The test configuration and apps made with it; the admin API and the public API called the way a
store owner's tools and the snippet call them; time passing; waiting for something to happen;
the SQL statements a block sends; servers in threads and in child processes.
"""

import dataclasses
import json
import os
import socket
import threading
import time
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import pytest
from flask import current_app
from flask_migrate import upgrade
from sqlalchemy import event as sa_event
from sqlalchemy import select, tuple_, update
from sqlalchemy.engine import Engine
from werkzeug.serving import make_server

from widget_server import create_app
from widget_server.extensions import db
from widget_server.models.types import UTCDateTime
from widget_server.services.visitors import state_store

# --- configuration ------------------------------------------------------------------------------

POSTGRES_URL = os.environ.get(
    "FUNNELCAKE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("FUNNELCAKE_REQUIRE_POSTGRES") == "1"

#: The database backends every test that uses the ``app`` fixture runs on.
BACKENDS = ["sqlite", "postgresql"]

BASE_TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret",
    "RATELIMIT_ENABLED": False,
    "CONFIG_CACHE_TTL_S": 0.0,
    "EVALUATE_INTERVAL_S": 0,
    "EVENTS_APPLY_INLINE": True,
    "REDIS_URL": "",
}


#: The Redis the tests that need one use (skipped with the reason when it is not reachable).
TEST_REDIS_URL = os.environ.get("FUNNELCAKE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_or_skip(url: str = TEST_REDIS_URL):
    """A client of the test Redis, or a skip saying it is not reachable."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as err:
        pytest.skip(f"Redis not reachable at {url}: {err.__class__.__name__}")
    return client


def postgres_missing(reason: str):
    """Skip, or fail under ``FUNNELCAKE_REQUIRE_POSTGRES=1`` (CI must run the PostgreSQL tests)."""
    if REQUIRE_POSTGRES:
        pytest.fail(reason + " (FUNNELCAKE_REQUIRE_POSTGRES=1)")
    pytest.skip(reason)


def configured_app(database_url: str, **settings):
    """An app with the tests' configuration on ``database_url``, with these settings on top."""
    return create_app({**BASE_TEST_CONFIG, "DATABASE_URL": database_url, **settings})


def migrate(database_url: str) -> None:
    """Bring a fresh database to the current schema (what ``funnelcake db upgrade`` does)."""
    app = configured_app(database_url)
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        db.engine.dispose()


# --- the admin API ------------------------------------------------------------------------------


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

    def put(self, path, json=None, **kwargs):
        return self.client.put(path, json=json, headers=self.headers, **kwargs)


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


def survey_variants(names="AB", weights=None) -> list[dict]:
    """Variants of ``survey_content()`` named by the letters of ``names``, the first the control,
    with ``weights`` (one a variant) if given."""
    variants = [
        {"name": name, "is_control": index == 0, "content": survey_content()}
        for index, name in enumerate(names)
    ]
    if weights is not None:
        for variant, weight in zip(variants, weights, strict=True):
            variant["weight"] = weight
    return variants


def create_site(admin: AdminClient, name="Shop", origins=("https://shop.example",), **settings):
    """Create a site through the admin API; its JSON."""
    response = admin.post(
        "/api/v1/admin/sites",
        json={"name": name, "allowed_origins": list(origins), "settings": settings},
    )
    assert response.status_code == 201, response.json
    return response.json


def create_campaign(admin: AdminClient, site: dict, start=True, variants=None, **fields):
    """Create (and by default start) a survey campaign through the admin API; its JSON."""
    body = {
        "name": "Survey",
        "kind": "survey",
        "trigger": {"type": "immediate"},
        **fields,
        "variants": variants or [{"name": "A", "is_control": True, "content": survey_content()}],
    }
    response = admin.post(f"/api/v1/admin/sites/{site['id']}/campaigns", json=body)
    assert response.status_code == 201, response.json
    campaign = response.json
    if start:
        started = admin.post(f"/api/v1/admin/campaigns/{campaign['id']}/start")
        assert started.status_code == 200, started.json
        campaign = started.json
    return campaign


# --- the public API, called the way the snippet does: text/plain JSON bodies, an Origin header ---

ORIGIN = "https://shop.example"


def post_public(client, site, endpoint, body, origin=ORIGIN, raw=None, address=None):
    """POST ``body`` (or the ``raw`` text) to a public endpoint of ``site``, from ``origin`` and,
    if given, the client address ``address``."""
    headers = {"Origin": origin} if origin else {}
    return client.post(
        f"/api/v1/sites/{site['site_key']}/{endpoint}",
        data=raw if raw is not None else json.dumps(body),
        content_type="text/plain;charset=UTF-8",
        headers=headers,
        environ_base={"REMOTE_ADDR": address} if address else {},
    )


def decide(client, site, visitor_id="visitor-0001", url="https://shop.example/", **extra):
    return post_public(client, site, "decide", {"visitor_id": visitor_id, "url": url, **extra})


def event(kind, visitor_id, campaign_id=None, variant_id=None, **data):
    return {
        "id": str(uuid.uuid4()),
        "type": kind,
        "visitor_id": visitor_id,
        "campaign_id": campaign_id,
        "variant_id": variant_id,
        "data": data,
    }


def send_events(client, site, events, **kwargs):
    return post_public(client, site, "events", {"events": events}, **kwargs)


# --- time passing -------------------------------------------------------------------------------


def time_passes(delta: timedelta, *tables: str) -> None:
    """Move every timestamp of these tables (all tables by default) ``delta`` into the past.

    Branches that depend on time (windows, cooldowns, expiries, touches) are tested with aged
    data: ``time_passes(timedelta(minutes=10))`` makes every row as old as it would be ten
    minutes later, so the code under test runs on the real clock against rows it did not just
    write.
    """
    db.session.commit()
    for table in db.metadata.sorted_tables:
        if tables and table.name not in tables:
            continue
        stamped = [c for c in table.columns if isinstance(c.type, UTCDateTime)]
        if not stamped:
            continue
        keys = list(table.primary_key.columns)
        for row in db.session.execute(select(*keys, *stamped)).all():
            values = {
                c.name: row[len(keys) + i] - delta
                for i, c in enumerate(stamped)
                if row[len(keys) + i] is not None
            }
            if values:
                db.session.execute(
                    update(table).where(tuple_(*keys) == tuple(row[: len(keys)])).values(**values)
                )
    db.session.commit()
    db.session.expire_all()
    if not tables or {"visitors", "assignments"} & set(tables):
        _age_visitor_states(delta)


def _age_visitor_states(delta: timedelta) -> None:
    """Age the states decide keeps as the rows were aged: those older than the store's TTL are
    gone by then, the others hold timestamps ``delta`` earlier (their tokens unchanged)."""
    store = current_app.extensions.get(state_store.EXTENSION_KEY)
    if store is None or store.shared:
        return
    if delta.total_seconds() >= current_app.config["VISITOR_STATE_TTL_S"]:
        store.clear()
        return
    with store._lock:
        for key, (expires_at, token, state) in list(store._states.items()):
            store._states[key] = (expires_at, token, _earlier(state, delta))


def _earlier(state, delta: timedelta):
    def moved(at):
        return at - delta if at is not None else None

    return dataclasses.replace(
        state,
        first_seen_at=moved(state.first_seen_at),
        last_seen_at=moved(state.last_seen_at),
        last_popup_end_at=moved(state.last_popup_end_at),
        assignments={
            campaign_id: dataclasses.replace(
                a, last_closed_at=moved(a.last_closed_at), completed_at=moved(a.completed_at)
            )
            for campaign_id, a in state.assignments.items()
        },
    )


# --- waiting and counting -----------------------------------------------------------------------


def until(check, *, act=None, timeout_s=10.0, interval_s=0.05, page=None):
    """Call ``act`` then ``check`` until ``check`` answers something true, and return that; the
    last (false) answer once ``timeout_s`` is up.

    With a Playwright ``page``, the pause lets the page deliver its events (routes, requests)
    meanwhile.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if act is not None:
            act()
        answer = check()
        if answer or time.monotonic() >= deadline:
            return answer
        if page is None:
            time.sleep(interval_s)
        else:
            page.wait_for_timeout(interval_s * 1000)


@dataclass(frozen=True)
class Statement:
    """One SQL statement sent to the database, with how many parameter sets went with it."""

    sql: str
    rows: int

    @property
    def is_insert(self) -> bool:
        return self.sql.lstrip().upper().startswith("INSERT")


@contextmanager
def statements_sent():
    """The SQL statements sent inside the block by this thread, through any engine (the test's
    app or one ``make_app`` made), as a list of ``Statement`` (the hot paths' tests count them:
    no query per row)."""
    sent: list[Statement] = []
    thread = threading.get_ident()

    def record(conn, cursor, statement, parameters, context, executemany):
        if threading.get_ident() == thread:
            sent.append(Statement(statement, len(parameters) if executemany else 1))

    sa_event.listen(Engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa_event.remove(Engine, "before_cursor_execute", record)


# --- servers ------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(server):
    """Run a ``socketserver`` server (werkzeug's, ``http.server``'s) in a thread for the block.

    It looks for a shutdown every 50 ms (the default, 0.5 s, was half a second of every test
    with a server)."""
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def closes_its_responses(app):
    """``app`` for werkzeug's threaded server, closing every response body itself.

    The server closes a body only after it has drained the request socket, and a browser that
    hangs up then (a back gesture mid-download) raises there first: the static file Flask sent
    stays open, and its ``ResourceWarning`` surfaces in whichever test runs next. Closing the
    body when its last chunk is written (or when the abandoned generator is collected) does
    what the server meant to.
    """

    def wsgi(environ, start_response):
        body = app(environ, start_response)

        def chunks():
            try:
                yield from body
            finally:
                if hasattr(body, "close"):
                    body.close()

        return chunks()

    return wsgi


@contextmanager
def serving_app(app):
    """``app`` over HTTP on 127.0.0.1 (werkzeug's threaded server) for the block; yields the
    server (its ``server_port``)."""
    wsgi = closes_its_responses(app)
    with serving(make_server("127.0.0.1", 0, wsgi, threaded=True)) as server:
        yield server


def server_environment(instance_dir=None, **settings) -> dict:
    """This process's environment for a server in a child process: no ``FUNNELCAKE_`` setting
    of ours, the instance folder and these settings (named without ``FUNNELCAKE_``) instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNNELCAKE_")}
    if instance_dir is not None:
        env["FUNNELCAKE_INSTANCE_DIR"] = str(instance_dir)
    env.update({f"FUNNELCAKE_{name}": str(value) for name, value in settings.items()})
    return env


def wait_for_server(base_url: str, process, output=lambda: "", timeout_s=60.0) -> None:
    """Wait until the server ``process`` answers ``GET /healthz`` with 200 on ``base_url``; fail
    with its ``output()`` if it exits first or never answers."""

    def answers() -> bool:
        assert process.poll() is None, f"the server exited:\n{output()}"
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:  # not listening yet, or not ready (an HTTPError is an OSError too)
            return False

    assert until(answers, timeout_s=timeout_s, interval_s=0.2), f"no answer:\n{output()}"
