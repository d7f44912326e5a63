"""What the snippet's browser tests share: the demo store's campaigns, the popup, the database."""

import copy
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from widget_server.extensions import db
from widget_server.models import Campaign
from widget_server.schemas.content import load_content
from widget_server.services.campaigns import catalog

SURVEY = "Loyalty questionnaire"
WHEEL = "Spin to win"
SITE_KEY = "pk_demo_store"

#: The index of the wheel slice under the pointer, from what the browser draws (not from the
#: snippet's own numbers): the topmost point of the rim just below the pointer's tip.
SLICE_UNDER_POINTER = """() => {
  const root = document.querySelector('funnelcake-popup').shadowRoot;
  const svg = root.querySelector('svg');
  const tip = new DOMPoint(0, -80).matrixTransform(svg.getScreenCTM());
  const hit = root.elementFromPoint(tip.x, tip.y);
  return [...svg.querySelectorAll('g > path, g > circle')].indexOf(hit);
}"""


def until(check, act=None, timeout_s=10.0, page=None):
    """Call ``act`` then ``check`` until ``check`` is true; False if it never was.

    With a ``page``, the pause lets Playwright deliver its events (routes, requests) meanwhile.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if act is not None:
            act()
        if check():
            return True
        if page is None:
            time.sleep(0.05)
        else:
            page.wait_for_timeout(50)
    return False


def freeze_clock(page) -> None:
    """Fake the page's timers and stop time: only ``page.clock.run_for`` moves it on
    (``clock.install`` alone lets it flow)."""
    start = datetime.now(UTC).replace(microsecond=0)
    page.clock.install(time=start)
    page.clock.pause_at(start + timedelta(seconds=1))


def dialog_count(page) -> int:
    return page.get_by_role("dialog").count()


def run_clock_until_dialog(page, step_ms=500) -> None:
    """Advance the page's frozen clock (``freeze_clock``) until a popup is shown."""
    assert until(lambda: dialog_count(page) > 0, lambda: page.clock.run_for(step_ms)), "no popup"


def exit_intent(page) -> None:
    """The pointer leaves the window at the top, as the browser reports it."""
    page.evaluate(
        "document.dispatchEvent(new MouseEvent('mouseout', {clientY: -1, bubbles: true}))"
    )


def open_wheel_on_cart(page, url: str) -> None:
    """Open the demo cart page (where the standalone wheel waits for exit intent) with a frozen
    clock (so the survey's delay never elapses) and show the wheel by leaving the window."""
    freeze_clock(page)
    page.goto(f"{url}/demo/cart")
    assert until(lambda: dialog_count(page) > 0, lambda: exit_intent(page)), "no wheel"
    page.get_by_role("heading", name="Spin to win").wait_for()


def answer(page, label: str) -> None:
    page.get_by_role("radio", name=label, exact=True).click()
    page.get_by_role("button", name="Next").click()


def visitor_key(page) -> str:
    return page.evaluate("localStorage.getItem('fc_vid')")


def campaign(app, name: str) -> Campaign:
    with app.app_context():
        return db.session.scalar(select(Campaign).where(Campaign.name == name))


def change_campaign(app, name: str, **fields) -> None:
    with app.app_context():
        found = db.session.scalar(select(Campaign).where(Campaign.name == name))
        catalog.update_campaign(found, fields)


def change_content(app, name: str, change) -> None:
    """Apply ``change(content)`` to every variant of the campaign ``name`` (through the catalog)."""
    with app.app_context():
        found = db.session.scalar(select(Campaign).where(Campaign.name == name))
        for variant in found.variants:
            content = copy.deepcopy(variant.content)
            change(content)
            catalog.update_variant(variant, {"content": load_content(found.kind, content)})


def rows(app, statement, count=1, timeout_s=10.0, page=None) -> list:
    """The rows ``statement`` selects, once there are at least ``count`` (waits for the server).

    Pass the ``page`` whose routes must keep answering meanwhile (see ``until``).
    """
    found = []

    def check():
        nonlocal found
        with app.app_context():
            found = list(db.session.scalars(statement))
        return len(found) >= count

    until(check, timeout_s=timeout_s, page=page)
    return found


def watch_csp(page) -> None:
    """Collect the page's Content-Security-Policy violations in ``window.__csp_violations``
    (the listener is installed by the browser driver, so the policy does not block it)."""
    page.add_init_script(
        "window.__csp_violations = [];"
        "document.addEventListener('securitypolicyviolation', e => window.__csp_violations.push("
        "e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber),"
        " true);"
    )


def is_store_page(url: str) -> bool:
    return "/demo/" in url and "/static/" not in url


def rewrite_store_pages(page, tag_attributes="", headers=None) -> None:
    """Serve the demo store's pages with more attributes on the snippet's tag (and headers)."""

    def handle(route):
        response = route.fetch()
        html = response.text().replace(
            'data-site="pk_demo_store"', f'data-site="pk_demo_store" {tag_attributes}'
        )
        kept = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        route.fulfill(response=response, body=html, headers={**kept, **(headers or {})})

    page.route(is_store_page, handle)


def collect_api_calls(page) -> list:
    """Every request the page makes to the public API, as it is made."""
    calls = []
    page.on("request", lambda r: calls.append(r) if "/api/v1/" in r.url else None)
    return calls


def loaded(page) -> None:
    page.wait_for_function("window.funnelcake && window.funnelcake.loaded")
