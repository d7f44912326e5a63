"""The template gallery in headless Chromium: every card's preview drawn by the real snippet, no
card wider than a phone, and a template turned into a draft campaign; screenshots of both."""

import pytest

from tests.admin.helpers import WIDTHS, log_in_page, shoot
from tests.admin.test_admin_browser import frame_has_dialog
from tests.helpers import until
from widget_server.services.campaigns import templates

pytestmark = pytest.mark.browser


def _previews_drawn(page) -> bool:
    frames = [f for f in page.frames if "/campaigns/templates/" in f.url]
    return len(frames) == len(templates.TEMPLATES) and all(frame_has_dialog(f) for f in frames)


def _overflowing_cards(page) -> list[str]:
    """The cards (or anything in them) wider than the viewport."""
    return page.evaluate(
        "() => [...document.querySelectorAll('.template-card, .template-card *')]"
        ".filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)"
        ".map(e => e.tagName + '.' + e.className)"
    )


def test_gallery_previews_every_template_and_creates_a_draft(new_page, owner_site):
    base = owner_site.url
    page = new_page(viewport=WIDTHS["desktop"])
    log_in_page(page, base)
    page.click("text=Demo store")
    page.wait_for_url("**/campaigns")
    page.click("text=New from a template")
    page.wait_for_url("**/campaigns/templates")
    assert page.locator(".template-card").count() == len(templates.TEMPLATES)
    assert until(lambda: _previews_drawn(page), timeout_s=20, page=page)
    shoot(page, "20-template-gallery")
    for label, size in WIDTHS.items():
        page.set_viewport_size(size)
        page.wait_for_timeout(150)
        assert _overflowing_cards(page) == [], label
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= size["width"], label
    page.set_viewport_size(WIDTHS["desktop"])
    assert page.errors == [] and page.console_errors == []

    # The demo store has coupon pools: the wheel's prize comes from the one chosen.
    card = page.locator("#template-spin_to_win")
    card.locator("select[name=pool_id]").select_option(label="Demo 10% off (150 left)")
    card.locator("text=Use this template").click()
    page.wait_for_url("**/admin/campaigns/*")
    assert "Draft created from the template" in page.locator("main").inner_text()
    assert page.locator(".variant-previews iframe").count() == 1
    page.click("button:text('Start')")
    assert "Campaign running." in page.locator("main").inner_text()
    shoot(page, "21-campaign-from-template")
