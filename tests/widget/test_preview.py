"""The admin's live preview runs the real snippet in preview mode: it renders the given content
at once, under the admin page's strict Content-Security-Policy, and calls, stores, records nothing.
"""

import pytest
from sqlalchemy import func, select

from tests.admin.helpers import PASSWORD
from tests.widget.helpers import SURVEY, WHEEL, answer, campaign, watch_csp
from widget_server.extensions import db
from widget_server.models import Event, Spin, Variant
from widget_server.services.platform.admin_users import create_admin

pytestmark = pytest.mark.browser


@pytest.fixture
def admin_page(live_server, new_page):
    """A page logged in to the admin, recording every request to the public API."""
    with live_server.app.app_context():
        create_admin("owner", PASSWORD)
    page = new_page()
    page.goto(f"{live_server.url}/admin/login")
    page.fill("input[name=username]", "owner")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/sites/**")
    page.api_calls = []
    page.on("request", lambda r: page.api_calls.append(r.url) if "/api/" in r.url else None)
    watch_csp(page)
    return page


def variant_id(app, name):
    campaign_id = campaign(app, name).id
    with app.app_context():
        return db.session.scalar(select(Variant.id).where(Variant.campaign_id == campaign_id))


def assert_nothing_recorded(app, page):
    assert page.api_calls == []
    assert page.evaluate("localStorage.length") == 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Event)) == 0
        assert db.session.scalar(select(func.count()).select_from(Spin)) == 0
    assert page.evaluate("window.__csp_violations") == []
    assert page.errors == [] and page.console_errors == []


def test_survey_preview_renders_at_once_and_records_nothing(live_server, admin_page):
    page = admin_page
    page.goto(f"{live_server.url}/admin/variants/{variant_id(live_server.app, SURVEY)}/preview")
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    assert "I feel good about shopping here." in dialog.inner_text()
    answer(page, "4")
    answer(page, "5")
    answer(page, "No")
    assert "Thank you!" in dialog.inner_text()
    overlay = page.locator("funnelcake-popup").evaluate(
        "host => getComputedStyle(host.shadowRoot.querySelector('.o')).position"
    )
    assert overlay == "fixed"  # its stylesheet applied despite style-src 'self'
    assert_nothing_recorded(live_server.app, page)


def test_wheel_preview_lands_on_a_slice_with_the_code_preview(live_server, admin_page):
    page = admin_page
    page.emulate_media(reduced_motion="reduce")
    page.goto(f"{live_server.url}/admin/variants/{variant_id(live_server.app, WHEEL)}/preview")
    page.get_by_role("heading", name="Spin to win").wait_for()
    page.get_by_label("E-mail (optional)").fill("ann@example.com")
    page.get_by_role("button", name="Spin", exact=True).click()
    status = page.get_by_role("status").inner_text()
    labels = ["10% off", "No prize", "15% off", "Free shipping"]
    assert any(status == f"You won {label}! Your code: PREVIEW" for label in labels), status
    assert page.get_by_label("Your code").input_value() == "PREVIEW"
    page.get_by_role("button", name="Copy code").click()
    assert_nothing_recorded(live_server.app, page)


def test_the_variant_editor_frames_the_preview(live_server, admin_page):
    page = admin_page
    page.goto(f"{live_server.url}/admin/variants/{variant_id(live_server.app, SURVEY)}")
    frame = page.frame(name="preview-frame")
    frame.get_by_role("dialog").wait_for()
    assert "I feel good about shopping here." in frame.get_by_role("dialog").inner_text()
    assert page.api_calls == []
