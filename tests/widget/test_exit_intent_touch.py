"""Exit intent on phones, in Chromium's mobile emulation on the demo cart page (where the wheel
waits for exit intent): a fast scroll up near the top, the tab hidden and shown again, and the
back gesture, caught once by one history entry without breaking navigation. A desktop keeps the
mouse gesture only."""

import pytest

from tests.widget.helpers import (
    SURVEY,
    change_campaign,
    collect_api_calls,
    dialog_count,
    freeze_clock,
    run_clock_until_dialog,
)

pytestmark = pytest.mark.browser

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}

#: Scroll to ``y`` and resolve once the page has seen the scroll (the snippet's listener first).
SCROLL_TO = """y => new Promise(done => {
  addEventListener('scroll', () => done(scrollY), {once: true});
  scrollTo(0, y);
})"""


@pytest.fixture(autouse=True)
def survey_shown_by_hand(live_server):
    """The demo survey (2 s after load, on the cart page too) waits for ``show``: any popup
    here is the wheel's, by exit intent."""
    change_campaign(live_server.app, SURVEY, trigger={"type": "manual"})


def open_cart(page, url: str, path="/demo/cart") -> None:
    """Open the cart page with a frozen clock and wait until the wheel's trigger is armed (the
    snippet adds the renderer's script in the same step)."""
    freeze_clock(page)
    page.goto(f"{url}{path}")
    page.wait_for_function("!!document.querySelector('script[src*=\"widget-render\"]')")


def make_tall(page) -> None:
    page.evaluate(
        "document.body.appendChild(Object.assign(document.createElement('div'),"
        " {id: 'tall'})).setAttribute('aria-hidden', 'true');"
        "document.getElementById('tall').style.height = '6000px'"
    )


def wheel_shown(page) -> bool:
    page.get_by_role("heading", name="Spin to win").wait_for()
    return dialog_count(page) == 1


def test_a_phone_is_a_coarse_pointer_and_the_desktop_is_not(browser, new_page):
    assert new_page(**PHONE).evaluate("matchMedia('(pointer:coarse)').matches") is True
    assert new_page().evaluate("matchMedia('(pointer:coarse)').matches") is False


def test_a_fast_scroll_up_near_the_top_shows_the_exit_popup(live_server, new_page):
    page = new_page(**PHONE)
    open_cart(page, live_server.url)
    make_tall(page)
    page.evaluate(SCROLL_TO, 3000)
    page.clock.run_for(50)
    page.evaluate(SCROLL_TO, 2000)  # 1,000 px up in 50 ms, but far from the top: reading on
    page.clock.run_for(5_000)
    page.evaluate(SCROLL_TO, 400)  # near the top, slowly (0.3 px/ms)
    page.clock.run_for(2_000)
    assert dialog_count(page) == 0
    page.evaluate(SCROLL_TO, 700)  # down again
    page.clock.run_for(50)
    page.evaluate(SCROLL_TO, 300)  # 400 px up in 50 ms: heading for the address bar
    assert wheel_shown(page)
    assert page.errors == []


def test_the_tab_hidden_and_shown_again_shows_the_exit_popup(live_server, new_page):
    page = new_page(**PHONE)
    # Headless Chromium keeps its one tab visible: the page is told it was hidden, as a phone's
    # browser does when the visitor switches apps, and shown again.
    page.add_init_script(
        "window.__visibility = 'visible';"
        "Object.defineProperty(document, 'visibilityState', {get: () => window.__visibility});"
    )
    open_cart(page, live_server.url)
    change = "state => { window.__visibility = state;"
    change += " document.dispatchEvent(new Event('visibilitychange')); }"
    page.evaluate(change, "visible")  # shown without having been hidden: nothing
    page.clock.run_for(1_000)
    assert dialog_count(page) == 0
    page.evaluate(change, "hidden")
    page.clock.run_for(1_000)
    assert dialog_count(page) == 0
    page.evaluate(change, "visible")
    assert wheel_shown(page)


def test_the_back_gesture_shows_the_popup_once_and_a_second_back_really_goes_back(
    live_server, new_page
):
    page = new_page(**PHONE)
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/")
    open_cart(page, live_server.url)
    entries = page.evaluate("history.length")
    page.touchscreen.tap(200, 400)
    page.touchscreen.tap(200, 500)
    assert page.evaluate("history.length") == entries + 1  # one entry, however many taps
    page.go_back()
    assert wheel_shown(page)
    assert page.url == f"{live_server.url}/demo/cart"
    page.go_back()
    page.wait_for_url(f"{live_server.url}/demo/")
    assert page.errors == []


def test_the_back_entry_leaves_single_page_navigation_as_it_was(live_server, new_page):
    page = new_page(**PHONE)
    calls = collect_api_calls(page)
    open_cart(page, live_server.url)
    page.touchscreen.tap(200, 400)
    with page.expect_response("**/decide"):
        page.evaluate("history.pushState({page: 'checkout'}, '', '/demo/checkout')")
    with page.expect_response("**/decide"):
        page.go_back()  # the SPA's back: a new page view of the cart, no popup from the entry
    page.clock.run_for(2_000)
    assert dialog_count(page) == 0
    decides = [c.post_data for c in calls if c.url.endswith("/decide")]
    assert ["/demo/cart" in d for d in decides] == [True, False, True]


def test_a_desktop_keeps_the_mouse_gesture_only(live_server, new_page):
    page = new_page()
    open_cart(page, live_server.url)
    make_tall(page)
    entries = page.evaluate("history.length")
    page.mouse.click(200, 400)
    page.evaluate(SCROLL_TO, 3000)
    page.clock.run_for(50)
    page.evaluate(SCROLL_TO, 100)
    page.clock.run_for(1_000)
    assert dialog_count(page) == 0
    assert page.evaluate("history.length") == entries  # no entry pushed on a desktop
    page.evaluate(
        "document.dispatchEvent(new MouseEvent('mouseout', {clientY: -1, bubbles: true}))"
    )
    run_clock_until_dialog(page)
