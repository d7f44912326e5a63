"""The spin-to-win wheel in headless Chromium on the demo store: the server picks the slice and the
code, the wheel lands there, the code the visitor sees is the one stored for them."""

import json
import re

import pytest
from sqlalchemy import select

from tests.helpers import until
from tests.widget.helpers import (
    SLICE_UNDER_POINTER,
    SURVEY,
    WHEEL,
    answer,
    campaign,
    change_content,
    dialog_count,
    freeze_clock,
    open_wheel_on_cart,
    rows,
    run_clock_until_dialog,
    visitor_key,
)
from widget_server.models import CouponCode, Event, Spin, Visitor

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect


def set_weights(weights):
    def change(content):
        slices = zip(content["slices"], weights, strict=True)
        content["slices"] = [{**s, "weight": weight} for s, weight in slices]

    return change


def spin_of(app, key):
    """The visitor's one spin (there must be exactly one)."""
    spins = rows(app, select(Spin).join(Visitor).where(Visitor.visitor_key == key))
    assert len(spins) == 1
    return spins[0]


def test_survey_reward_spins_the_wheel_and_the_code_shown_is_stored_for_the_visitor(
    live_server, new_page
):
    app = live_server.app
    # Only the "10% off" slice can be drawn, so the visitor surely wins a code from its pool.
    change_content(app, WHEEL, set_weights([1, 0, 0, 0]))
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/")
    run_clock_until_dialog(page)
    answer(page, "4")
    answer(page, "5")
    answer(page, "Yes, already")
    page.get_by_role("button", name="Spin the wheel for a discount").click()

    dialog = page.get_by_role("dialog")
    assert dialog.get_by_role("heading").inner_text() == "Spin to win"
    assert page.locator("funnelcake-popup").count() == 1  # the same popup turned into the wheel
    page.get_by_label("E-mail (optional)").fill("Ann@Example.com")
    page.get_by_role("checkbox", name="Send me offers").check()
    page.get_by_role("button", name="Spin", exact=True).click()

    status = page.get_by_role("status").filter(has_text="Your code:")
    status.wait_for()
    assert status.get_attribute("aria-live") == "polite"
    code = page.get_by_label("Your code").input_value()
    assert code.startswith("DEMO10-")
    assert f"You won 10% off! Your code: {code}" in status.inner_text()
    assert page.evaluate(SLICE_UNDER_POINTER) == 0

    page.get_by_role("button", name="Copy code").click()
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == code

    key = visitor_key(page)
    spin = spin_of(app, key)
    assert (spin.slice_index, spin.code, spin.email) == (0, code, "ann@example.com")
    [coupon] = rows(app, select(CouponCode).where(CouponCode.code == code))
    assert coupon.status == "assigned" and coupon.visitor_id == spin.visitor_id
    wheel_id = campaign(app, WHEEL).id
    # Applied (in the beacon's own request, after its insert commits): wait for that, not only
    # for the row, or the read can land between the two.
    claimed = select(Event).where(
        Event.type == "claim", Event.campaign_id == wheel_id, Event.pending.is_(False)
    )
    assert [e.visitor_id for e in rows(app, claimed)] == [spin.visitor_id]
    completed = select(Event.campaign_id).where(Event.type == "complete")
    assert sorted(rows(app, completed, count=2)) == sorted([campaign(app, SURVEY).id, wheel_id])
    assert page.errors == []


def test_standalone_wheel_lands_on_the_slice_the_server_chose(live_server, new_page):
    page = new_page()
    open_wheel_on_cart(page, live_server.url)
    spin_button = page.get_by_role("button", name="Spin", exact=True)
    with page.expect_response("**/spin") as answered:
        spin_button.click()
    result = answered.value.json()
    request = json.loads(answered.value.request.post_data)
    assert set(request) == {"visitor_id", "campaign_id"}  # no e-mail given, and never a slice
    spin_button.wait_for(state="detached")  # the result replaces it once the wheel has stopped

    assert page.evaluate(SLICE_UNDER_POINTER) == result["slice_index"]
    spin = spin_of(live_server.app, visitor_key(page))
    assert (spin.slice_index, spin.code) == (result["slice_index"], result["code"])
    status = page.get_by_role("status").inner_text()
    if result["code"]:
        assert page.get_by_label("Your code").input_value() == result["code"]
        assert result["code"] in status
    else:
        assert page.get_by_label("Your code").count() == 0
        assert status == f"{result['label']}."
    assert page.errors == []


def test_copying_the_code_keeps_the_prize_name_on_screen(live_server, new_page):
    change_content(live_server.app, WHEEL, set_weights([1, 0, 0, 0]))
    page = new_page(permissions=["clipboard-read", "clipboard-write"], reduced_motion="reduce")
    open_wheel_on_cart(page, live_server.url)
    page.get_by_role("button", name="Spin", exact=True).click()
    copy = page.get_by_role("button", name="Copy code")
    copy.click()
    page.get_by_role("button", name="Copied").wait_for()
    code = page.get_by_label("Your code").input_value()
    assert page.evaluate("navigator.clipboard.readText()") == code
    assert page.get_by_role("status").inner_text() == f"You won 10% off! Your code: {code}"
    assert page.errors == []


def test_reduced_motion_shows_the_result_without_animating(live_server, new_page):
    page = new_page(reduced_motion="reduce")
    open_wheel_on_cart(page, live_server.url)
    spin_button = page.get_by_role("button", name="Spin", exact=True)
    with page.expect_response("**/spin") as answered:
        spin_button.click()
    spin_button.wait_for(state="detached")
    wheel = page.locator("funnelcake-popup svg g")
    assert wheel.evaluate("g => [g.style.transition, g.getAnimations().length]") == ["", 0]
    assert page.evaluate(SLICE_UNDER_POINTER) == answered.value.json()["slice_index"]


def test_a_required_email_is_asked_for_before_any_spin(live_server, new_page):
    def require_email(content):
        content["email_capture"] = {"enabled": True, "required": True}

    change_content(live_server.app, WHEEL, require_email)
    page = new_page()
    spins = []
    page.on("request", lambda r: spins.append(r) if r.url.endswith("/spin") else None)
    open_wheel_on_cart(page, live_server.url)
    page.get_by_role("button", name="Spin", exact=True).click()
    assert page.get_by_role("status").inner_text() == "Please enter a valid e-mail address."
    assert page.get_by_label("E-mail", exact=True).get_attribute("aria-invalid") == "true"
    assert spins == []
    page.get_by_label("E-mail", exact=True).fill("bob@example.com")
    page.get_by_role("button", name="Spin", exact=True).click()
    assert spin_of(live_server.app, visitor_key(page)).email == "bob@example.com"


@pytest.mark.parametrize(
    "status, fields, message, can_retry",
    [
        (503, {}, "Sorry, please try again in a moment.", True),
        (500, {}, "Sorry, please try again in a moment.", True),
        (429, {}, "Sorry, please try again in a moment.", True),
        (None, {}, "Sorry, please try again in a moment.", True),
        (409, {"email": ["used"]}, "This e-mail address has already played.", True),
        (404, {"campaign_id": ["gone"]}, "Sorry, this offer is no longer available.", False),
        (409, {"visitor_id": ["no"]}, "Sorry, this offer is no longer available.", False),
        (400, {"slice": ["unknown"]}, "Sorry, this offer is no longer available.", False),
    ],
    ids=["503", "500", "429", "network-error", "409-email", "404", "409-visitor", "400"],
)
def test_a_failed_spin_says_so_kindly_and_never_throws(
    live_server, new_page, status, fields, message, can_retry
):
    page = new_page()
    calls = []

    def fail(route):
        calls.append(route.request.url)
        if status is None:
            return route.abort()
        body = {"error": {"code": "x", "message": "x", "fields": fields}}
        route.fulfill(status=status, json=body, headers={"Retry-After": "1"})

    page.route("**/spin", fail)
    open_wheel_on_cart(page, live_server.url)
    spin_button = page.get_by_role("button", name="Spin", exact=True)
    spin_button.click()
    assert until(lambda: len(calls) == 1, page=page)
    if status and status >= 500:  # asked again once, after Retry-After
        # Advance the frozen clock in steps: the retry timer is set only once the page has read
        # the 5xx, which may come after the route handler ran (one jump could come too early).
        assert until(lambda: len(calls) == 2, act=lambda: page.clock.run_for(250), page=page)
    expect(page.get_by_role("status")).to_have_text(message)
    assert spin_button.is_enabled() == can_retry
    assert len(calls) == (2 if status and status >= 500 else 1)
    assert dialog_count(page) == 1 and page.errors == []


def expiring_win(minutes):
    """Only the "10% off" slice can be drawn, and its code is valid for ``minutes``."""

    def change(content):
        set_weights([1, 0, 0, 0])(content)
        content["slices"][0]["expires_in_minutes"] = minutes

    return change


def spin_expiring_code(live_server, new_page, minutes):
    """Spin a wheel whose code expires in ``minutes`` (frozen clock, no animation): the page and
    the spin's answer."""
    change_content(live_server.app, WHEEL, expiring_win(minutes))
    page = new_page(reduced_motion="reduce")
    open_wheel_on_cart(page, live_server.url)
    with page.expect_response("**/spin") as answered:
        page.get_by_role("button", name="Spin", exact=True).click()
    page.get_by_label("Your code").wait_for()
    return page, answered.value.json()


def countdown(page):
    return page.locator("funnelcake-popup").locator("p", has_text="Valid until")


def test_a_code_with_an_expiry_counts_down_to_it_and_says_once_when_it_expired(
    live_server, new_page
):
    page, answer = spin_expiring_code(live_server, new_page, 2)
    assert answer["expires_at"].endswith("Z")
    line = countdown(page)
    expect(line).to_have_text(
        re.compile(r"^Valid until \d\d:\d\d (AM |PM )?· expires in 0[12]:\d\d$")
    )
    # Screen readers read "Valid until ..." and never the ticking seconds; nothing is live.
    ticking = line.locator("span")
    assert ticking.get_attribute("aria-hidden") == "true"
    assert line.get_attribute("aria-live") is None and line.get_attribute("role") is None
    before = ticking.inner_text()
    page.clock.run_for(1_000)
    assert ticking.inner_text() != before  # one second less
    status = page.get_by_role("status")
    assert "expired" not in status.inner_text()

    page.clock.run_for(3 * 60_000)
    expect(page.locator("funnelcake-popup").locator("p", has_text="Expired at")).to_have_count(1)
    assert status.inner_text().endswith("Your code: " + answer["code"] + " This code has expired.")
    assert page.errors == []


def test_a_code_valid_for_hours_counts_down_in_hours_minutes_and_seconds(live_server, new_page):
    page, _ = spin_expiring_code(live_server, new_page, 90)
    expect(countdown(page)).to_have_text(re.compile(r"expires in 01:(29|30):\d\d$"))


def test_a_code_without_expiry_shows_no_countdown(live_server, new_page):
    change_content(live_server.app, WHEEL, set_weights([1, 0, 0, 0]))
    page = new_page(reduced_motion="reduce")
    open_wheel_on_cart(page, live_server.url)
    page.get_by_role("button", name="Spin", exact=True).click()
    page.get_by_label("Your code").wait_for()
    assert countdown(page).count() == 0
