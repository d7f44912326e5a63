"""The admin page in headless Chromium, used as a store owner would; screenshots of each page.

Screenshots land in ``test-artifacts/admin/`` (git-ignored) at desktop and phone widths.
"""

import json
import uuid
from pathlib import Path

import pytest

from tests.admin.helpers import PASSWORD
from widget_server import PROJECT_ROOT
from widget_server.services.admin_users import create_admin

pytestmark = pytest.mark.browser

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "admin"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
SCRIPT = "<script>window.__pwned = 1</script><b>bold?</b>"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("no /usr/bin/chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def owner_site(live_server):
    with live_server.app.app_context():
        create_admin("owner", PASSWORD)
    return live_server


def shoot(page, name: str) -> None:
    """Save the page at desktop and phone widths (full page)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, size in WIDTHS.items():
        page.set_viewport_size(size)
        page.wait_for_timeout(150)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(WIDTHS["desktop"])


def log_in(page, base):
    page.goto(f"{base}/admin/sites")
    assert "/admin/login" in page.url
    page.fill("input[name=username]", "owner")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/admin/sites")


def send_as_snippet(page, base, site_key, events):
    """Post events the way widget.js does (text/plain JSON, same origin as the demo store)."""
    response = page.request.post(
        f"{base}/api/v1/sites/{site_key}/events",
        data=json.dumps({"events": events}),
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": base},
    )
    assert response.status == 202, response.text()


def test_store_owner_creates_previews_starts_and_reads_a_survey(browser, owner_site):
    base = owner_site.url
    context = browser.new_context(viewport=WIDTHS["desktop"])
    page = context.new_page()
    console_errors = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

    page.goto(f"{base}/admin/login")
    shoot(page, "01-login")
    log_in(page, base)
    shoot(page, "02-sites")

    page.click("text=Demo store")
    page.wait_for_url("**/campaigns")
    shoot(page, "03-campaigns")

    # A new survey through the forms, first with a bad value.
    page.click("text=New survey")
    page.fill("input[name=name]", "Why no purchase?")
    page.select_option("select[name='trigger.type']", "delay")
    page.fill("input[name='trigger.seconds']", "5000")
    page.click("text=Create campaign")
    error = page.locator(".field.invalid .field-error").first
    assert "less than or equal to 3600" in error.inner_text()
    shoot(page, "04-campaign-form-error")
    page.fill("input[name='trigger.seconds']", "1")
    page.fill("textarea[name='targeting.url_exclude']", "/demo/checkout*")
    page.click("text=Create campaign")
    page.wait_for_url("**/variants/new")

    # The first variant: change the starter question, add a free-text question.
    page.fill("textarea[name='content.steps.0.question']", "What stopped you from buying?")
    page.click("button[value='add:content.steps']")
    page.select_option("select[name='content.steps.1.type']", "text")
    page.fill("textarea[name='content.steps.1.question']", "Anything else?")
    assert page.locator("input[name='content.steps.1.options.0.label']").is_hidden()
    page.wait_for_timeout(1200)  # let the editor's own live refresh settle
    page.click("text=Preview changes")
    page.wait_for_timeout(500)
    frame = page.frame(name="preview-frame")
    frame.wait_for_load_state()
    assert frame.locator("script[data-preview]").count() == 1
    preview = json.loads(frame.locator("#funnelcake-preview").text_content())
    assert preview["content"]["steps"][1]["question"] == "Anything else?"
    shoot(page, "05-variant-editor")
    page.click("button.primary:text('Save variant')")
    page.wait_for_url("**/variants/*")
    assert "saved" in page.locator(".flash").inner_text()

    # Start it.
    page.click("text=← Why no purchase?")
    shoot(page, "06-campaign")
    page.click("button:text('Start')")
    assert "running" in page.locator("h1 .status").inner_text()

    # A visitor answers it (through the public API, as the snippet reports answers).
    campaign_id = int(page.url.rstrip("/").split("/")[-1])
    decide = page.request.post(
        f"{base}/api/v1/sites/pk_demo_store/decide",
        data=json.dumps({"visitor_id": "v-browser-1", "url": f"{base}/demo/"}),
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": base},
    ).json()
    variant_id = next(
        c["variant_id"] for c in decide["campaigns"] if c["campaign_id"] == campaign_id
    )

    def ev(kind, **data):
        return {
            "id": str(uuid.uuid4()),
            "type": kind,
            "visitor_id": "v-browser-1",
            "campaign_id": campaign_id,
            "variant_id": variant_id,
            "data": data,
        }

    send_as_snippet(
        page,
        base,
        "pk_demo_store",
        [
            ev("impression"),
            ev("answer", step_id="q1", value="friend"),
            ev("answer", step_id="q2", value=SCRIPT),
            ev("complete"),
        ],
    )

    page.goto(f"{base}/admin/sites/1/responses?campaign_id={campaign_id}")
    cell = page.locator("dl.answers dd").filter(has_text="bold?")
    assert cell.inner_text() == SCRIPT  # shown as text
    assert page.locator("dl.answers b").count() == 0
    assert page.evaluate("window.__pwned") is None
    shoot(page, "07-responses")

    page.goto(f"{base}/admin/campaigns/{campaign_id}/results")
    assert page.locator("table.results tbody tr").first.locator("td.num").nth(1).inner_text() == "1"
    assert page.locator("svg.chart").count() == 1
    shoot(page, "08-results")

    page.goto(f"{base}/admin/sites/1/funnel")
    assert page.locator("svg.chart").count() == 1
    shoot(page, "09-funnel")
    page.goto(f"{base}/admin/sites/1/coupons")
    shoot(page, "10-coupons")
    page.goto(f"{base}/admin/sites/1/campaigns")
    assert page.locator("text=Why no purchase?").count() == 1
    shoot(page, "11-campaigns-after")

    csp_violations = [e for e in console_errors if "Content Security Policy" in e]
    assert csp_violations == []
    context.close()


def test_answering_on_the_demo_store_with_the_real_snippet(browser, owner_site):
    if not (PROJECT_ROOT / "static" / "widget.js").exists():
        pytest.skip("static/widget.js is not written yet")
    base = owner_site.url
    context = browser.new_context(viewport=WIDTHS["desktop"])
    page = context.new_page()
    page.goto(f"{base}/demo/")
    dialog = page.locator("[role=dialog]")
    dialog.first.wait_for(timeout=8000)
    page.keyboard.press("Tab")
    shoot(page, "12-demo-store-popup")
    context.close()
