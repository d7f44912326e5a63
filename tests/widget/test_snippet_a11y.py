"""The popup with a keyboard alone and on a 360 px wide phone, in headless Chromium; what the
visitor sees before answering and when Next is pressed without an answer.

Screenshots of the phone layout land in ``test-artifacts/widget/`` (git-ignored).
"""

import pytest
from sqlalchemy import select

from tests.widget.helpers import (
    answer,
    dialog_count,
    freeze_clock,
    open_wheel_on_cart,
    rows,
    run_clock_until_dialog,
)
from widget_server import PROJECT_ROOT
from widget_server.models import Event

pytestmark = pytest.mark.browser

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "widget"

#: What has the focus inside the popup (null when the focus is outside it).
FOCUSED = """() => {
  const host = document.querySelector('funnelcake-popup');
  const inside = host && document.activeElement === host && host.shadowRoot.activeElement;
  return inside ? (inside.getAttribute('aria-label') || inside.textContent
                   || inside.type + ':' + inside.parentNode.textContent.trim()) : null;
}"""


def test_keyboard_alone_answers_focus_stays_inside_and_esc_closes(live_server, new_page):
    page = new_page()
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/")
    page.focus("a.brand")
    run_clock_until_dialog(page)
    dialog = page.get_by_role("dialog")
    assert dialog.get_attribute("aria-modal") == "true"
    # focus moved in, on the question (no answer looks chosen)
    assert page.evaluate(FOCUSED) == "I feel good about shopping here."

    seen = set()
    for key in ["Tab"] * 6 + ["Shift+Tab"] * 6:
        page.keyboard.press(key)
        focused = page.evaluate(FOCUSED)
        assert focused is not None, f"{key} left the popup"
        seen.add(focused)
    assert {"Close", "Next"} <= seen  # it cycles over the close button, answers and Next

    while not page.evaluate(FOCUSED).startswith("radio:"):
        page.keyboard.press("Tab")
    page.keyboard.press("ArrowRight")  # choose 2 ...
    page.keyboard.press("Tab")  # ... (Back is disabled on the first step) ...
    assert page.evaluate(FOCUSED) == "Next"
    page.keyboard.press("Enter")  # ... and go on: a low score skips to the last question
    assert dialog.get_by_role("heading").inner_text() == "Have you recommended us to a friend?"

    page.keyboard.press("Escape")
    assert dialog_count(page) == 0
    assert page.evaluate("document.activeElement.className") == "brand"  # focus given back
    [closed] = rows(live_server.app, select(Event).where(Event.type == "close"), page=page)
    assert closed.data == {"step_id": "action"}
    assert page.errors == []


#: The outline drawn around each answer of the first question, and the focused element's tag.
OUTLINES = """() => {
  const root = document.querySelector('funnelcake-popup').shadowRoot;
  return [[...root.querySelectorAll('.c label')].map(l => getComputedStyle(l).outlineStyle),
          root.activeElement && root.activeElement.tagName];
}"""


def test_no_answer_looks_chosen_when_the_survey_opens(live_server, new_page):
    page = new_page()
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/")
    run_clock_until_dialog(page)
    outlines, focused = page.evaluate(OUTLINES)
    assert focused == "H2" and set(outlines) == {"none"}, (focused, outlines)
    assert page.get_by_role("radio", checked=True).count() == 0
    page.keyboard.press("Tab")  # the keyboard user gets the ring on the first answer
    outlines, focused = page.evaluate(OUTLINES)
    assert focused == "INPUT" and outlines[0] == "solid" and set(outlines[1:]) == {"none"}


def test_next_without_an_answer_says_why_until_an_answer_is_chosen(live_server, new_page):
    page = new_page()
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/")
    run_clock_until_dialog(page)
    dialog = page.get_by_role("dialog")
    group = dialog.get_by_role("group")
    page.get_by_role("button", name="Next").click()
    message = dialog.get_by_text("Choose an answer to continue.")
    assert message.is_visible()
    assert message.get_attribute("aria-live") == "polite"  # announced
    assert group.get_attribute("aria-invalid") == "true"
    assert group.get_attribute("aria-describedby") == message.get_attribute("id")
    assert "1 of 3" in dialog.inner_text()  # still on the first question

    page.get_by_role("radio", name="3", exact=True).click()
    assert group.get_attribute("aria-invalid") is None
    assert message.count() == 0 or message.inner_text() == ""
    assert group.evaluate("g => getComputedStyle(g).outlineStyle") == "none"
    page.get_by_role("button", name="Next").click()
    assert "2 of 3" in dialog.inner_text()
    assert page.errors == []


def fits(page, locator, width=360, height=640) -> None:
    box = locator.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
    assert box["y"] >= 0 and box["y"] + box["height"] <= height, box


@pytest.mark.parametrize("popup", ["survey", "wheel"])
def test_popup_fits_and_works_on_a_360_px_wide_phone(live_server, new_page, popup):
    page = new_page(viewport={"width": 360, "height": 640}, has_touch=True, reduced_motion="reduce")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if popup == "survey":
        freeze_clock(page)
        page.goto(f"{live_server.url}/demo/")
        run_clock_until_dialog(page)
    else:
        open_wheel_on_cart(page, live_server.url)
    dialog = page.get_by_role("dialog")
    fits(page, dialog)
    for button in dialog.get_by_role("button").all():
        fits(page, button)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path=str(ARTIFACTS / f"{popup}-360.png"))

    if popup == "survey":
        answer(page, "5")
        answer(page, "4")
        answer(page, "Not yet, but I would")
        fits(page, dialog.get_by_role("button", name="Spin the wheel for a discount"))
    else:
        spin = dialog.get_by_role("button", name="Spin", exact=True)
        spin.tap()
        spin.wait_for(state="detached")
        fits(page, dialog)
        for button in dialog.get_by_role("button").all():
            fits(page, button)
    page.screenshot(path=str(ARTIFACTS / f"{popup}-360-done.png"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert page.errors == []
