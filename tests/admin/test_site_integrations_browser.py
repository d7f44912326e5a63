"""The Integrations page in headless Chromium, as a store owner pastes a Shopify secret: saved,
shown as set and never shown back, and the page fits a 390 px phone (the webhook addresses are
long words)."""

import pytest

from tests.admin.helpers import WIDTHS, log_in_page, shoot

pytestmark = pytest.mark.browser

SECRET = "2f0c8a9e1b7d4c3e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a"


def test_owner_pastes_the_shopify_secret_and_links_carts(new_page, owner_site):
    base = owner_site.url
    page = new_page(viewport=WIDTHS["desktop"])
    log_in_page(page, base)
    page.click("text=Demo store")
    page.click("nav >> text=Integrations")
    page.wait_for_url("**/integrations")
    assert (
        "/integrations/shopify/orders"
        in page.locator("section:has(h2:text('Shopify')) code").inner_text()
    )
    page.fill("input[name='integrations.shopify.webhook_secret']", SECRET)
    page.check("input[type=checkbox][name='integrations.shopify.link_cart']")
    page.click("button:text('Save')")
    page.wait_for_selector("text=Integrations saved.")
    shopify = page.locator("section:has(h2:text('Shopify'))")
    assert "set (it is never shown again)" in shopify.inner_text()
    assert page.input_value("input[name='integrations.shopify.webhook_secret']") == ""
    assert SECRET not in page.content()
    assert page.is_checked("input[type=checkbox][name='integrations.shopify.link_cart']")
    shoot(page, "20-integrations")
    page.set_viewport_size(WIDTHS["phone"])
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTHS["phone"]["width"]
    assert page.errors == [] and page.console_errors == []
