"""PostgreSQL stopped for 10 s under load: fast 503s with Retry-After, then nothing is lost.

The database is a private cluster this module starts on a free port (the shared server on 5432
is never stopped: other tests use it), served by gunicorn with two workers.
"""

import os
import threading
import time
import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from tests.reliability.servers import (
    Gunicorn,
    Storefront,
    in_process_app,
    migrate,
    private_postgres,
    request,
    seed_site,
)
from widget_server.demo.store import ensure_demo_site
from widget_server.extensions import db
from widget_server.models import Event

OUTAGE_S = 10
#: Far above the 2 s connect timeout, far below a hang: not a timing test, a "no hang" test.
MAX_ANSWER_S = 5
ORIGIN = "https://shop.example"
CLIENTS = 6


@pytest.fixture(scope="module")
def cluster():
    """A private PostgreSQL with a site and a running survey, served by gunicorn."""
    postgres = private_postgres()
    server = None
    try:
        migrate(postgres.url)
        site, campaign = seed_site(postgres.url, origins=[ORIGIN])
        server = Gunicorn(postgres.url, workers=2)
        app = in_process_app(postgres.url)
        with app.app_context():
            ensure_demo_site([server.base_url])
            db.session.remove()
            db.engine.dispose()
        yield SimpleNamespace(
            postgres=postgres, server=server, site=site, campaign=campaign, app=app
        )
    finally:
        if server is not None:
            server.stop()
        postgres.destroy()


def _stored(cluster, *conditions) -> int:
    with cluster.app.app_context():
        count = db.session.scalar(select(func.count()).select_from(Event).where(*conditions))
        db.session.remove()
        db.engine.dispose()
    return count


def test_stopped_database_answers_503_fast_and_loses_nothing(cluster):
    stop = threading.Event()
    clients = [
        Storefront(cluster.server, cluster.site, cluster.campaign, f"outage-{i}", stop, ORIGIN)
        for i in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    time.sleep(1.0)
    cluster.postgres.stop()
    outage_started = time.monotonic()
    time.sleep(2.0)
    ready_during = request(cluster.server.base_url, "GET", "/readyz", timeout_s=30)
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_started)))
    cluster.postgres.start()
    time.sleep(2.0)
    stop.set()
    for client in clients:
        client.join(timeout=60)
    ready_after = request(cluster.server.base_url, "GET", "/readyz", timeout_s=30)

    answers = [a for c in clients for a in c.answers]
    statuses = [a.status for a in answers]
    print(
        f"{len(answers)} answers, {statuses.count(503)} x 503, "
        f"slowest {max(a.elapsed_s for a in answers):.2f} s"
    )
    assert ready_during.status == 503 and ready_after.status == 200
    assert sum(c.connection_errors for c in clients) == 0
    assert set(statuses) == {202, 503}, sorted(set(statuses))
    assert max(a.elapsed_s for a in answers) < MAX_ANSWER_S
    for answer in answers:
        if answer.status == 503:
            assert int(answer.headers["retry-after"]) > 0
            assert answer.json()["error"]["code"] == "unavailable"
    assert statuses.count(503) >= CLIENTS  # every client met the outage
    # Every event acknowledged, and nothing else, is stored: once each.
    acknowledged = [event_id for c in clients for event_id in c.acknowledged]
    assert all(not c.is_alive() for c in clients)
    assert len(set(acknowledged)) == len(acknowledged)
    assert _stored(cluster, Event.site_id == cluster.site["id"]) == len(acknowledged)


ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("no /usr/bin/chromium (make test installs it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        yield browser.new_page()
        browser.close()


def _queue_text(page) -> str:
    """The snippet's stored event queue (``fc_q``, docs/wire-contract.md), as stored."""
    return page.evaluate("localStorage.getItem('fc_q') || ''")


def _conversions(cluster, names) -> int:
    return _stored(cluster, Event.type == "convert", Event.data["name"].as_string().in_(names))


@pytest.mark.browser
def test_snippet_keeps_its_queue_while_the_database_is_down(cluster, page):
    # The page's timers run on a controllable clock: after the restart the test jumps over the
    # snippet's backoff instead of sleeping through it.
    page.clock.install()
    sends = []  # the status of each events request, or "failed" (no answer readable)
    page.on("response", lambda r: sends.append(r.status) if r.url.endswith("/events") else None)
    page.on("requestfailed", lambda r: r.url.endswith("/events") and sends.append("failed"))
    page.goto(f"{cluster.server.base_url}/demo/")
    page.wait_for_function("typeof window.funnelcake === 'function'")  # the snippet ran
    before = f"before-{uuid.uuid4().hex[:8]}"
    page.evaluate(f"funnelcake('track', '{before}')")
    deadline = time.monotonic() + 15
    while _conversions(cluster, [before]) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _conversions(cluster, [before]) == 1

    cluster.postgres.stop()
    outage_started = time.monotonic()
    sent_before_outage = len(sends)
    names = [f"during-{i}-{uuid.uuid4().hex[:8]}" for i in range(5)]
    for name in names:
        page.evaluate(f"funnelcake('track', '{name}')")
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_started)))
    # Ten seconds of failed sends later, the events are all still queued in the browser.
    queued = _queue_text(page)
    assert all(name in queued for name in names)
    during = sends[sent_before_outage:]
    assert any(status != 202 for status in during), during  # it tried, failed, kept them
    cluster.postgres.start()

    deadline = time.monotonic() + 30
    while _conversions(cluster, names) < len(names) and time.monotonic() < deadline:
        page.clock.fast_forward(65_000)  # the longest backoff the snippet waits
        time.sleep(0.5)
    assert _conversions(cluster, names) == len(names)
    page.clock.fast_forward(65_000)
    page.wait_for_function("(localStorage.getItem('fc_q') || '[]') === '[]'", timeout=10_000)
    assert _conversions(cluster, [before, *names]) == len(names) + 1
