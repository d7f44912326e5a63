"""The demo store in headless Chromium: the survey popup appears and its answers are stored."""

import os
import time

import pytest
from sqlalchemy import select

from widget_server.extensions import db
from widget_server.models import Response

pytestmark = pytest.mark.browser
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("no /usr/bin/chromium (make test installs it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        yield browser.new_page()
        browser.close()


def _stored_response(app, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with app.app_context():
            response = db.session.scalar(select(Response).where(Response.completed.is_(True)))
            if response is not None:
                return {k: v["value"] for k, v in response.answers.items()}
        time.sleep(0.2)
    return None


def _answer(popup, label):
    popup.get_by_role("radio", name=label, exact=True).click()
    popup.get_by_role("button", name="Next").click()


def test_loyalty_survey_is_answered_step_by_step_and_stored(live_server, page):
    page.goto(f"{live_server.url}/demo/")
    dialog = page.get_by_role("dialog")
    dialog.wait_for(timeout=10_000)
    assert "1 of 3" in dialog.inner_text()
    _answer(page, "4")
    assert "2 of 3" in dialog.inner_text()
    _answer(page, "5")
    _answer(page, "Yes, already")
    assert "Thank you" in dialog.inner_text()
    assert _stored_response(live_server.app) == {"emotional": 4, "intentional": 5, "action": "yes"}


def test_low_emotional_score_skips_the_intentional_step(live_server, page):
    page.goto(f"{live_server.url}/demo/")
    dialog = page.get_by_role("dialog")
    dialog.wait_for(timeout=10_000)
    _answer(page, "1")
    assert "Have you recommended us" in dialog.inner_text()
    _answer(page, "No")
    assert _stored_response(live_server.app) == {"emotional": 1, "action": "no"}
