"""The teaser in headless Chromium: the tab a closed popup leaves, reopening it by mouse and by
keyboard, the tab on later page views within its window (and not after), its events, and the
tab on a 390 px wide phone.

Screenshots land in ``test-artifacts/widget/`` (git-ignored).
"""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.helpers import time_passes, until
from tests.widget.helpers import (
    SURVEY,
    change_campaign,
    dialog_count,
    freeze_clock,
    rows,
    run_clock_until_dialog,
)
from widget_server import PROJECT_ROOT
from widget_server.extensions import db
from widget_server.models import Event

pytestmark = pytest.mark.browser

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "widget"
TEXT = "Get 10% off"

#: The element that has the focus: "tab" (the teaser's button), "dialog" (inside the popup),
#: or the page element's tag.
FOCUSED = """() => {
  const active = document.activeElement;
  if (active && active.localName === 'funnelcake-teaser') return 'tab';
  const popup = active && active.localName === 'funnelcake-popup';
  if (popup && active.shadowRoot.activeElement) return 'dialog';
  return active ? active.localName : null;
}"""


@pytest.fixture
def teaser(live_server):
    """The demo survey with a 3-day teaser on the left (and its 1 day after a close)."""
    change_campaign(
        live_server.app,
        SURVEY,
        frequency={
            "stop_after_complete": True,
            "days_after_close": 1,
            "teaser": {"text": TEXT, "side": "left", "days": 3},
        },
    )


def shown_and_closed(page, url, close="click"):
    freeze_clock(page)
    page.goto(f"{url}/demo/")
    run_clock_until_dialog(page)
    if close == "click":
        page.get_by_role("dialog").get_by_role("button", name="Close").click()
    else:
        page.keyboard.press("Escape")
    assert dialog_count(page) == 0


def event_count(app, kind) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).where(Event.type == kind))


def test_tab_appears_after_close_and_reopens_the_popup_by_mouse(live_server, new_page, teaser):
    page = new_page()
    shown_and_closed(page, live_server.url)
    tab = page.get_by_role("button", name=TEXT)
    tab.wait_for()
    assert tab.get_attribute("aria-haspopup") == "dialog"
    box = tab.bounding_box()
    assert box["x"] == 0  # the left side

    tab.click()
    assert dialog_count(page) == 1
    assert page.evaluate(FOCUSED) == "dialog"  # focus moved into the popup
    assert tab.count() == 0  # the tab goes while its popup is open

    rows(live_server.app, select(Event).where(Event.type == "teaser_open"), page=page)
    rows(live_server.app, select(Event).where(Event.type == "teaser_shown"), page=page)
    # The reopening is the visitor's own choice, not another impression.
    assert event_count(live_server.app, "impression") == 1
    assert page.errors == []


def test_tab_reopens_by_keyboard_gets_the_focus_back_and_traps_nothing(
    live_server, new_page, teaser
):
    page = new_page()
    shown_and_closed(page, live_server.url, close="escape")
    page.get_by_role("button", name=TEXT).wait_for()
    assert until(lambda: page.evaluate(FOCUSED) == "tab", act=lambda: page.keyboard.press("Tab"))
    page.keyboard.press("Enter")
    assert dialog_count(page) == 1
    assert page.evaluate(FOCUSED) == "dialog"

    page.keyboard.press("Escape")
    assert dialog_count(page) == 0
    page.get_by_role("button", name=TEXT).wait_for()
    assert page.evaluate(FOCUSED) == "tab"  # back to the tab that opened it
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED) != "tab"  # it does not hold the focus
    assert page.errors == []


def test_tab_persists_on_the_next_page_view_within_its_window_and_not_after(
    live_server, new_page, teaser
):
    app = live_server.app
    page = new_page()
    shown_and_closed(page, live_server.url)
    rows(app, select(Event).where(Event.type == "close", Event.pending.is_(False)), page=page)

    page.goto(f"{live_server.url}/demo/cart")
    page.get_by_role("button", name=TEXT).wait_for()
    page.clock.run_for(5_000)
    assert dialog_count(page) == 0  # days_after_close still holds for the popup itself
    assert until(lambda: event_count(app, "teaser_shown") >= 2, page=page)

    page.get_by_role("button", name=TEXT).click()  # reopens the popup on this page too
    assert dialog_count(page) == 1

    with app.app_context():
        time_passes(timedelta(days=3, hours=1))
    page.goto(f"{live_server.url}/demo/cart")
    page.wait_for_function("window.funnelcake && window.funnelcake.loaded")
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("button", name=TEXT).count() == 0
    assert page.errors == []


@pytest.mark.parametrize("motion", ["reduce", "no-preference"])
def test_tab_on_a_390_px_phone_stays_at_the_edge_and_respects_reduced_motion(
    live_server, new_page, teaser, motion
):
    page = new_page(viewport={"width": 390, "height": 844}, has_touch=True, reduced_motion=motion)
    shown_and_closed(page, live_server.url)
    tab = page.get_by_role("button", name=TEXT)
    tab.wait_for()
    box = tab.bounding_box()
    assert box["x"] == 0 and box["width"] <= 24, box  # a strip inside the page margin
    assert box["y"] >= 0 and box["y"] + box["height"] <= 844 * 0.8, box
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # The page's content stays reachable: its middle is the page, not the tab.
    middle = page.evaluate("document.elementFromPoint(195, 422).localName")
    assert middle not in ("funnelcake-teaser", "funnelcake-popup")
    animation = tab.evaluate("b => getComputedStyle(b).animationName")
    assert (animation == "none") is (motion == "reduce")
    if motion == "reduce":
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "teaser-390.png"))
    tab.tap()
    assert dialog_count(page) == 1
    assert page.errors == []
