"""The snippet's page-facing options in headless Chromium on the demo store: consent, single-page
navigation, the inactivity trigger, the page API, debug logging, locale, a strict CSP and storage
that throws."""

import json
import re

import pytest
from sqlalchemy import select

from tests.helpers import until
from tests.widget.helpers import (
    SITE_KEY,
    SURVEY,
    WHEEL,
    answer,
    campaign,
    change_campaign,
    change_content,
    collect_api_calls,
    dialog_count,
    freeze_clock,
    is_store_page,
    loaded,
    rewrite_store_pages,
    rows,
    run_clock_until_dialog,
    visitor_key,
    watch_csp,
)
from widget_server import PROJECT_ROOT
from widget_server.extensions import db
from widget_server.models import Event, Response, Site, Visitor
from widget_server.services.campaigns import catalog
from widget_server.services.platform import signatures

pytestmark = pytest.mark.browser

STUB = "window.funnelcake = window.funnelcake || function () { (funnelcake.q = funnelcake.q || []).push(arguments) };"  # noqa: E501


def sent(calls, path) -> list[dict]:
    """The bodies of the calls to ``path`` made so far."""
    return [json.loads(c.post_data) for c in calls if c.url.endswith(f"/{path}")]


def eligible(message) -> bool:
    return "[funnelcake]" in message.text and "eligible" in message.text


def test_required_consent_stores_and_sends_nothing_until_given(live_server, new_page):
    page = new_page()
    rewrite_store_pages(page, 'data-consent="required"')
    calls = collect_api_calls(page)
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/")
    loaded(page)
    page.evaluate(
        "funnelcake('track', 'before_consent'); funnelcake('identify', {customerId: 'c1'})"
    )
    page.clock.run_for(10_000)  # long past the survey's 2 s delay
    assert calls == [] and dialog_count(page) == 0
    assert page.evaluate("[localStorage.length, sessionStorage.length, document.cookie]") == [
        0,
        0,
        "",
    ]

    page.evaluate("funnelcake('consent', true)")
    run_clock_until_dialog(page)
    key = visitor_key(page)
    assert key
    paths = [c.url.rsplit("/", 1)[1] for c in calls]
    # the calls made before consent are replayed; decide waits for identify
    assert sorted(paths[:3]) == ["decide", "events", "identify"]
    assert paths.index("identify") < paths.index("decide")
    goals = rows(live_server.app, select(Event).where(Event.type == "convert"))
    assert [g.data["name"] for g in goals] == ["before_consent"]
    [visitor] = rows(live_server.app, select(Visitor).where(Visitor.visitor_key == key))
    assert visitor.customer_id == "c1"


def test_spa_navigation_cancels_a_pending_delayed_popup_and_asks_decide_again(
    live_server, new_page
):
    page = new_page()
    calls = collect_api_calls(page)
    freeze_clock(page)
    with page.expect_console_message(eligible):  # the survey's 2 s delay is running
        page.goto(f"{live_server.url}/demo/?funnelcake_debug=1")
    page.clock.run_for(1_000)
    with page.expect_response("**/decide"):
        page.evaluate("history.pushState({}, '', '/demo/checkout')")  # no popups there
    page.clock.run_for(10_000)
    assert dialog_count(page) == 0

    with page.expect_console_message(eligible):
        page.evaluate("history.back()")  # popstate: back on a page where the survey may show
    page.clock.run_for(1_000)
    assert dialog_count(page) == 0  # its delay started again with the page
    run_clock_until_dialog(page)

    decides = [json.loads(c.post_data) for c in calls if c.url.endswith("/decide")]
    assert [(d["url"].split("/", 3)[3], d["page_views"]) for d in decides] == [
        ("demo/?funnelcake_debug=1", 1),
        ("demo/checkout", 2),
        ("demo/?funnelcake_debug=1", 3),
    ]


def test_replace_state_without_a_new_url_is_not_a_page_view(live_server, new_page):
    page = new_page()
    calls = collect_api_calls(page)
    freeze_clock(page)
    with page.expect_console_message(eligible):
        page.goto(f"{live_server.url}/demo/?funnelcake_debug=1")
    page.evaluate("history.replaceState({scroll: 10}, '')")
    run_clock_until_dialog(page)
    assert len([c for c in calls if c.url.endswith("/decide")]) == 1


def test_inactivity_trigger_waits_for_seconds_without_activity(live_server, new_page):
    change_campaign(live_server.app, SURVEY, trigger={"type": "inactivity", "seconds": 5})
    page = new_page()
    freeze_clock(page)
    with page.expect_console_message(eligible):
        page.goto(f"{live_server.url}/demo/?funnelcake_debug=1")
    logged = []
    page.on("console", lambda message: logged.append(message.text))
    page.clock.run_for(4_000)
    page.mouse.move(200, 200)
    page.clock.run_for(4_000)
    page.keyboard.press("ArrowDown")
    page.clock.run_for(4_000)
    # The trigger, not the renderer's load (real time, outside the frozen clock), is under test:
    # the snippet logs when it fires.
    fired = lambda: any(" shown" in text for text in logged)  # noqa: E731
    assert not fired() and dialog_count(page) == 0  # 12 s on the page, never 5 s idle
    page.clock.run_for(1_100)
    assert until(fired, page=page)
    assert until(lambda: dialog_count(page) == 1, page=page)


def test_page_api_calls_made_before_the_script_loads_are_replayed(live_server, new_page):
    page = new_page()
    page.add_init_script(
        STUB
        + "funnelcake('identify', {customerId: 42, email: 'ann@example.com', emailConsent: true,"
        "  attributes: {tier: 'gold'}});"
        "funnelcake('cart', {value: '59.90', items: 2, currency: 'EUR'});"
        "funnelcake('track', 'newsletter', {source: 'footer'});"
    )
    calls = collect_api_calls(page)
    page.goto(f"{live_server.url}/demo/cart")
    app = live_server.app
    [goal] = rows(app, select(Event).where(Event.type == "convert"))
    assert goal.data == {"name": "newsletter", "props": {"source": "footer"}}
    assert until(lambda: sent(calls, "decide"), page=page)  # decide waits for identify's answer
    [identify] = sent(calls, "identify")
    assert identify == {
        "visitor_id": visitor_key(page),
        "customer_id": "42",
        "email": "ann@example.com",
        "email_consent": True,
        "attributes": {"tier": "gold"},
    }
    [decide] = sent(calls, "decide")
    assert decide["cart"] == {"value": 59.9, "items": 2}
    [visitor] = rows(app, select(Visitor).where(Visitor.visitor_key == visitor_key(page)))
    assert (visitor.customer_id, visitor.email, visitor.attributes) == (
        "42",
        "ann@example.com",
        {"tier": "gold"},
    )


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_identify_forwards_the_shops_signature_where_the_site_requires_one(
    live_server, new_page, signed
):
    app = live_server.app
    with app.app_context():
        site = db.session.scalar(select(Site).where(Site.site_key == SITE_KEY))
        catalog.update_site(site, {"settings": {"require_signed_identify": True}})
        signature = signatures.sign(site.secret, b"c-9") if signed else None
    page = new_page()
    who = {"customerId": "c-9", "customerSignature": signature}
    page.add_init_script(STUB + f"funnelcake('identify', {json.dumps(who)});")
    with page.expect_response("**/identify") as identified:
        page.goto(f"{live_server.url}/demo/checkout")
    assert identified.value.status == (200 if signed else 401)
    [visitor] = rows(app, select(Visitor).where(Visitor.visitor_key == visitor_key(page)))
    assert visitor.customer_id == ("c-9" if signed else None)
    assert page.errors == []


def test_data_api_names_the_server_when_the_file_comes_from_a_cdn(live_server, new_page):
    """The API calls go to data-api; the renderer comes from the CDN, beside widget.js."""
    page = new_page()
    from_cdn = []

    def cdn(route):
        name = route.request.url.rsplit("/", 1)[1]
        from_cdn.append(name)
        route.fulfill(path=PROJECT_ROOT / "static" / name)

    page.route("https://cdn.example/funnelcake/*", cdn)

    def store(route):
        response = route.fetch()
        cdn = f'src="https://cdn.example/funnelcake/widget.js" data-api="{live_server.url}/"'
        html = response.text().replace('src="/static/widget.js"', cdn)
        route.fulfill(response=response, body=html, headers={"Content-Type": "text/html"})

    page.route(is_store_page, store)
    calls = collect_api_calls(page)
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/")
    run_clock_until_dialog(page)
    assert calls[0].url == f"{live_server.url}/api/v1/sites/pk_demo_store/decide"
    loader = (PROJECT_ROOT / "static" / "widget.js").read_text()
    [renderer] = set(re.findall(r"widget-render\.[0-9a-f]+\.js", loader))  # static/ keeps the last
    assert from_cdn == ["widget.js", renderer]


def test_show_opens_a_campaign_at_once(live_server, new_page):
    wheel_id = campaign(live_server.app, WHEEL).id
    page = new_page()
    page.add_init_script(STUB + f"funnelcake('show', {wheel_id});")
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/cart")
    page.get_by_role("heading", name="Spin to win").wait_for()


def test_debug_logs_why_each_campaign_was_or_was_not_shown(live_server, new_page):
    app = live_server.app
    survey_id, wheel_id = campaign(app, SURVEY).id, campaign(app, WHEEL).id
    page = new_page()
    logged = []
    page.on("console", lambda m: logged.append(m.text) if "[funnelcake]" in m.text else None)
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/?funnelcake_debug=1")
    run_clock_until_dialog(page)
    assert f"[funnelcake] campaign {wheel_id} not shown: url not in url_include" in logged
    assert any(f"campaign {survey_id} eligible" in m for m in logged)
    assert f"[funnelcake] campaign {survey_id} shown" in logged

    quiet = new_page()
    quiet.on("console", lambda m: logged.append(m.text) if "[funnelcake]" in m.text else None)
    logged.clear()
    freeze_clock(quiet)
    quiet.goto(f"{live_server.url}/demo/")
    run_clock_until_dialog(quiet)
    assert logged == []


@pytest.mark.parametrize(
    "tag_attribute, browser_locale",
    [('data-locale="de"', "en-US"), ("", "de-DE")],
    ids=["data-locale", "browser-language"],
)
def test_texts_are_picked_by_locale(live_server, new_page, tag_attribute, browser_locale):
    def german(content):
        step = content["steps"][0]
        step["question"] = {"en": step["question"], "de": "Ich kaufe gern hier ein."}

    change_content(live_server.app, SURVEY, german)
    page = new_page(locale=browser_locale)
    rewrite_store_pages(page, tag_attribute)
    calls = collect_api_calls(page)
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/")
    run_clock_until_dialog(page)
    assert (
        page.get_by_role("dialog").get_by_role("heading").inner_text() == "Ich kaufe gern hier ein."
    )
    decide = json.loads(next(c for c in calls if c.url.endswith("/decide")).post_data)
    assert decide["locale"] in ("de", "de-DE")


STRICT = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'"
WITH_NONCE = (
    "default-src 'self'; script-src 'self' 'nonce-r4nd0m'; style-src 'self' 'nonce-r4nd0m'; "
    "connect-src 'self'"
)
#: Scripts only by nonce: the renderer's script element must carry the tag's nonce.
NONCE_ONLY = "default-src 'self'; script-src 'nonce-r4nd0m'; style-src 'self'; connect-src 'self'"
NO_CONSTRUCTED_SHEETS = "delete ShadowRoot.prototype.adoptedStyleSheets;"


@pytest.mark.parametrize(
    "policy, init_script, tag, refused",
    [
        (STRICT, "", "", False),
        (WITH_NONCE, NO_CONSTRUCTED_SHEETS, 'nonce="r4nd0m"', False),
        (WITH_NONCE, NO_CONSTRUCTED_SHEETS, "", True),
        (NONCE_ONLY, "", 'nonce="r4nd0m"', False),
    ],
    ids=[
        "constructed-stylesheet",
        "style-with-nonce",
        "style-without-nonce-is-refused",
        "scripts-by-nonce-only",
    ],
)
def test_survey_and_wheel_under_a_strict_csp(
    live_server, new_page, policy, init_script, tag, refused
):
    """With constructable stylesheets no nonce is needed; without them (older browsers) the
    snippet's <style> carries the nonce given on its tag, as does the renderer's script."""
    page = new_page(reduced_motion="reduce")
    if init_script:
        page.add_init_script(init_script)
    watch_csp(page)
    rewrite_store_pages(page, tag, {"Content-Security-Policy": policy})
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/")
    run_clock_until_dialog(page)
    found = page.evaluate("window.__csp_violations")
    if refused:  # the check sees a refused style: without its nonce the <style> is refused
        assert found and found[0].startswith("style-src")
        return
    assert (
        page.locator("funnelcake-popup").evaluate(
            "host => getComputedStyle(host.shadowRoot.querySelector('.o')).position"
        )
        == "fixed"
    )
    answer(page, "4")
    answer(page, "5")
    answer(page, "No")
    page.get_by_role("button", name="Spin the wheel for a discount").click()
    page.get_by_role("button", name="Spin", exact=True).click()
    page.get_by_role("button", name="Spin", exact=True).wait_for(state="detached")
    assert found == [] and page.evaluate("window.__csp_violations") == []
    assert page.console_errors == [] and page.errors == []


BLOCKED = (
    "Object.defineProperty(window, 'localStorage', {get() {"
    " throw new DOMException('The operation is insecure.', 'SecurityError'); }});"
)
FULL = (
    "Storage.prototype.setItem = function () {"
    " throw new DOMException('Quota exceeded', 'QuotaExceededError'); };"
)
GARBAGE = "localStorage.setItem('fc_q', '{not json'); localStorage.setItem('fc_pv', 'many');"


@pytest.mark.parametrize("storage", [BLOCKED, FULL, GARBAGE], ids=["blocked", "full", "garbage"])
def test_storage_that_throws_never_breaks_the_page_nor_the_survey(live_server, new_page, storage):
    page = new_page()
    page.add_init_script(storage)
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/")
    run_clock_until_dialog(page)
    answer(page, "2")
    answer(page, "No")
    app = live_server.app
    assert rows(app, select(Response).where(Response.completed))
    assert page.errors == []


def renderer_requests(page) -> list:
    """The page's requests for the snippet's renderer, as they are made."""
    found = []
    page.on("request", lambda r: found.append(r) if "/widget-render." in r.url else None)
    return found


def test_renderer_is_fetched_once_decide_offers_a_popup_before_its_trigger(live_server, new_page):
    page = new_page()
    fetched = renderer_requests(page)
    freeze_clock(page)
    with page.expect_response("**/widget-render.*.js"):
        page.goto(f"{live_server.url}/demo/")  # the survey waits 2 s: the clock stands still
    assert dialog_count(page) == 0
    run_clock_until_dialog(page)
    assert len(fetched) == 1


def test_a_page_view_without_a_popup_never_fetches_the_renderer(live_server, new_page):
    page = new_page()
    fetched = renderer_requests(page)
    with page.expect_response("**/decide"):
        page.goto(f"{live_server.url}/demo/checkout")
    page.wait_for_timeout(300)
    assert fetched == []


def test_a_renderer_that_fails_to_load_breaks_nothing_and_the_next_page_view_tries_again(
    live_server, new_page
):
    page = new_page()
    fetched = renderer_requests(page)
    outage = [True]
    page.route(
        "**/widget-render.*.js",
        lambda route: route.abort() if outage[0] else route.continue_(),
    )
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/")
    assert until(lambda: len(fetched) == 1, page=page)
    page.clock.run_for(5_000)  # past the survey's delay: its trigger asks once more, in vain
    assert until(lambda: len(fetched) == 2, page=page)
    assert dialog_count(page) == 0 and page.errors == []

    outage[0] = False
    with page.expect_response("**/decide"):
        page.evaluate("history.pushState({}, '', '/demo/?again=1')")
    run_clock_until_dialog(page)
    assert len(fetched) == 3 and page.errors == []
