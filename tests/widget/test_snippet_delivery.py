"""How the snippet delivers events, in headless Chromium: backoff after 5xx and network errors,
delivery after recovery and on a later page, no retry after a 4xx, the 1,000-event cap, beacons
under 64 KB. Playwright's routes play the failing server; its clock plays the waiting."""

import json

import pytest
from sqlalchemy import select

from tests.helpers import until
from tests.widget.helpers import freeze_clock, rows
from widget_server.models import Event

pytestmark = pytest.mark.browser

STUB = "window.funnelcake = window.funnelcake || function () { (funnelcake.q = funnelcake.q || []).push(arguments) };"  # noqa: E501
QUEUE = "JSON.parse(localStorage.getItem('fc_q') || '[]')"


def track_goal(page, name="goal"):
    page.evaluate(STUB + f"funnelcake('track', '{name}')")


def tries(page) -> list[int]:
    """The try count of each queued event."""
    return page.evaluate(f"{QUEUE}.map(x => x.n)")


def seed_queue(page, count, pad=0):
    """Fill the stored queue before the snippet starts (``seed-0000`` is the oldest)."""
    page.add_init_script(
        "if (!localStorage.getItem('fc_q')) localStorage.setItem('fc_q', JSON.stringify("
        f"Array.from({{length: {count}}}, (_, i) => ({{n: 0, e: {{"
        "id: 'seed-' + String(i).padStart(4, '0'), type: 'convert', visitor_id: 'visitor-seed',"
        " campaign_id: null, variant_id: null,"
        f" data: {{name: 'seed', pad: 'x'.repeat({pad})}}}}}}))));"
    )


def test_5xx_is_retried_with_growing_jittered_delays_and_delivered_after_recovery(
    live_server, new_page
):
    page = new_page()
    attempts, outage = [], [True]

    def events(route):
        attempts.append(route.request)
        if outage[0]:
            return route.fulfill(status=503, json={"error": {"code": "unavailable"}})
        return route.continue_()

    page.route("**/events", events)
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/checkout")  # a page without popups: only our event
    track_goal(page)
    # Try k failed: the next comes between 0.5 and 1.5 times 2^k seconds later.
    for k in range(4):
        assert until(lambda k=k: tries(page) == [k + 1], page=page)
        low_ms, high_ms = 500 * 2**k, 1500 * 2**k
        page.clock.run_for(low_ms - 20)
        page.wait_for_timeout(150)
        assert len(attempts) == k + 1, f"try {k + 2} came before {low_ms} ms"
        if k == 3:
            outage[0] = False  # the server is back for the fifth try
        page.clock.run_for(high_ms - low_ms + 40)
        assert until(lambda k=k: len(attempts) == k + 2, page=page), f"no try {k + 2}"

    [stored] = rows(live_server.app, select(Event).where(Event.type == "convert"), page=page)
    assert stored.data["name"] == "goal"
    assert until(lambda: tries(page) == [], page=page)  # confirmed: off the queue
    bodies = [json.loads(a.post_data)["events"][0]["id"] for a in attempts]
    assert set(bodies) == {stored.event_uuid}  # the same event, id and all, every time


def test_events_queued_during_an_outage_are_sent_again_on_a_later_page(live_server, new_page):
    page = new_page()
    outage, answers = [True], []

    def events(route):
        if outage[0]:
            return route.abort()  # the server is unreachable
        route.continue_()

    page.route("**/events", events)
    # The beacon sent while leaving is lost too (here the browser refuses it; Playwright's routes
    # do not see a beacon sent during unload, so it would reach the server otherwise).
    page.add_init_script("navigator.sendBeacon = () => false;")
    page.on("response", lambda r: answers.append(r) if r.url.endswith("/events") else None)
    freeze_clock(page)  # this page's retries never come
    page.goto(f"{live_server.url}/demo/checkout")
    track_goal(page)
    assert until(lambda: tries(page) == [1], page=page)
    [queued] = page.evaluate(f"{QUEUE}.map(x => x.e.id)")

    outage[0] = False
    page.reload()
    [stored] = rows(live_server.app, select(Event).where(Event.type == "convert"), page=page)
    assert stored.event_uuid == queued
    assert until(lambda: tries(page) == [], page=page)
    assert [a.json() for a in answers] == [{"accepted": 1, "duplicates": 0}]  # the later page's


@pytest.mark.parametrize("status", [400, 403, 413])
def test_a_4xx_is_not_retried(live_server, new_page, status):
    page = new_page()
    attempts = []

    def events(route):
        attempts.append(route.request)
        route.fulfill(status=status, json={"error": {"code": "validation_error"}})

    page.route("**/events", events)
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/checkout")
    track_goal(page)
    assert until(lambda: len(attempts) == 1, page=page)
    assert until(lambda: tries(page) == [], page=page)  # dropped
    page.clock.run_for(10 * 60_000)
    page.wait_for_timeout(150)
    assert len(attempts) == 1


def test_queue_keeps_the_newest_1000_events(live_server, new_page):
    page = new_page()
    seed_queue(page, 1000)
    page.route("**/events", lambda route: route.abort())
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/checkout")
    track_goal(page, "newest")
    assert until(lambda: page.evaluate(f"{QUEUE}.at(-1).e.data.name") == "newest", page=page)
    ids = page.evaluate(f"{QUEUE}.map(x => x.e.id)")
    assert len(ids) == 1000
    assert ids[0] == "seed-0001" and "seed-0000" not in ids  # the oldest went first


def test_each_beacon_is_text_plain_under_64_kb_and_events_stay_queued(live_server, new_page):
    page = new_page()
    seed_queue(page, 300, pad=1000)  # about 330 KB waiting
    page.add_init_script(
        "window.__beacons = [];"
        "const send = navigator.sendBeacon.bind(navigator);"
        "navigator.sendBeacon = (url, data) => { __beacons.push(data); return send(url, data); };"
    )
    kinds = []  # what the network saw: a string beacon goes as text/plain;charset=UTF-8
    page.on(
        "request",
        lambda r: r.url.endswith("/events") and kinds.append(r.headers.get("content-type")),
    )
    page.route("**/events", lambda route: route.abort())
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/checkout")
    assert until(lambda: tries(page)[0] == 1, page=page)  # the first batch failed
    page.evaluate("dispatchEvent(new Event('pagehide'))")
    beacons = page.evaluate("__beacons.map(b => [new Blob([b]).size, JSON.parse(b)])")
    assert beacons, "no beacon sent"
    assert until(lambda: len(kinds) >= 2, page=page)  # the failed fetch, a beacon at least
    assert set(kinds) == {"text/plain;charset=UTF-8"}  # a simple request: no CORS preflight
    for size, body in beacons:
        assert size < 64 * 1024
        assert len(body["events"]) >= 50  # as many as fit
    first = beacons[0][1]["events"]
    assert [e["id"] for e in first[:2]] == ["seed-0000", "seed-0001"]
    assert "n" not in first[0]  # the stored try count is not sent
    assert len(tries(page)) == 300
