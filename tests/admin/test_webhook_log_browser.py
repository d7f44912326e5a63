"""The webhooks page in headless Chromium: reached from the site's navigation, its delivery log
read at desktop and phone widths (no hostile text run, nothing wider than a phone), a failed
delivery redelivered with its button; screenshots of both."""

import pytest
from sqlalchemy import update

from tests.admin.helpers import WIDTHS, log_in_page, shoot
from tests.admin.test_webhook_log_page import HOSTILE
from widget_server.demo.store import ensure_demo_site
from widget_server.extensions import db
from widget_server.models import WebhookDelivery
from widget_server.models.types import utcnow
from widget_server.services.platform import webhooks

pytestmark = pytest.mark.browser

URL = "https://hooks.shop.example/funnelcake/a-rather-long-path-that-a-phone-must-wrap"


def _deliveries_of_every_kind(app, base: str) -> None:
    """A delivered, a failed (its receiver's answer hostile) and a pending delivery on the demo
    store, as the worker would have left them."""
    with app.app_context():
        site = ensure_demo_site([base])
        site.settings = {
            **(site.settings or {}),
            "webhook": {"url": URL, "events": ["coupon.redeemed", "coupon.won"]},
            "response_webhook": {
                "url": "https://hooks.slack.example/services/T0/B0/x",
                "events": ["response.completed"],
                "format": "slack",
            },
        }
        now = utcnow()
        for event, data in [
            ("stage.changed", {"visitor_id": "0b6f-demo", "to_stage": "customer"}),
            ("response.completed", {"answers": [{"question": "Why?", "answer": HOSTILE}]}),
            ("coupon.won", {"code": "SPRING-7KQ2MX9RT4WZ", "visitor_id": "0b6f-demo"}),
        ]:
            webhooks.enqueue(site.id, [URL], event, [(data, now)])
        db.session.flush()
        states = {
            "stage.changed": {"status": "delivered", "attempts": 1, "delivered_at": now},
            "response.completed": {
                "status": "failed",
                "attempts": 8,
                "next_attempt_at": None,
                "last_error": f"HTTP 500: {HOSTILE}",
            },
            "coupon.won": {"attempts": 2, "last_error": "TimeoutError: timed out"},
        }
        for event, values in states.items():
            db.session.execute(
                update(WebhookDelivery).where(WebhookDelivery.event == event).values(**values)
            )
        db.session.commit()
        db.session.remove()


def _wider_than_the_viewport(page) -> list[str]:
    return page.evaluate(
        "() => [...document.querySelectorAll('main *')]"
        ".filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)"
        ".filter(e => !e.closest('details:not([open])'))"
        ".map(e => e.tagName + '.' + e.className)"
    )


def test_store_owner_reads_the_delivery_log_and_redelivers(new_page, owner_site):
    base = owner_site.url
    _deliveries_of_every_kind(owner_site.app, base)
    page = new_page(viewport=WIDTHS["desktop"])
    log_in_page(page, base)
    page.click("text=Demo store")
    page.wait_for_url("**/campaigns")
    page.click("nav.main-nav >> text=Webhooks")
    page.wait_for_url("**/webhooks")

    assert page.locator("table.receivers tbody tr").count() == 2
    rows = page.locator("table.deliveries tbody tr")
    assert rows.count() == 3
    assert [rows.nth(i).locator(".pill").inner_text() for i in range(3)] == [
        "pending",
        "failed",
        "delivered",
    ]
    failed = rows.nth(1)
    failed.locator("summary").click()
    shown = failed.locator("pre.body").inner_text()  # as text, in JSON
    assert "<script>window.__pwned = 1</script><img src=x onerror=" in shown
    assert HOSTILE in failed.locator("td.error").inner_text()
    assert page.evaluate("window.__pwned") is None
    page.locator("details.secret summary").click()
    assert page.locator("code.webhook-secret").inner_text().startswith("whsec_")
    shoot(page, "30-webhooks")
    for label, size in WIDTHS.items():
        page.set_viewport_size(size)
        page.wait_for_timeout(150)
        assert _wider_than_the_viewport(page) == [], label
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"], label
    page.set_viewport_size(WIDTHS["desktop"])

    failed.locator("button:text('Redeliver')").click()
    page.wait_for_url("**/webhooks")
    assert "queued again as delivery" in page.locator("main").inner_text()
    assert page.locator("table.deliveries tbody tr").count() == 4
    newest = page.locator("table.deliveries tbody tr").first
    assert newest.locator(".pill").inner_text() == "pending"
    assert newest.locator("strong").inner_text() == "response.completed"
    shoot(page, "31-webhooks-redelivered")
    assert page.errors == [] and page.console_errors == []
