"""The admin page in headless Chromium, used as a store owner would; screenshots of each page.

Screenshots land in ``test-artifacts/admin/`` (git-ignored) at desktop and phone widths.
"""

import json

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.admin.helpers import WIDTHS, log_in_page, shoot
from tests.helpers import until
from widget_server import PROJECT_ROOT

pytestmark = pytest.mark.browser

SCRIPT = "<script>window.__pwned = 1</script><b>bold?</b>"


def frame_has_dialog(frame) -> bool:
    """Whether the real snippet drew its popup (in its Shadow DOM) inside a preview frame."""
    return frame.evaluate(
        "() => [...document.querySelectorAll('*')].some("
        "e => e.shadowRoot && e.shadowRoot.querySelector('[role=dialog]'))"
    )


def test_store_owner_creates_previews_starts_and_reads_a_survey(new_page, owner_site):
    base = owner_site.url
    page = new_page(viewport=WIDTHS["desktop"])

    page.goto(f"{base}/admin/login")
    shoot(page, "01-login")
    log_in_page(page, base)
    shoot(page, "02-sites")

    page.click("text=Demo store")
    page.wait_for_url("**/campaigns")
    shoot(page, "03-campaigns")

    # A new survey through the forms, first with bad values: each message under its field.
    page.click("text=New survey")
    page.fill("input[name=name]", "Why no purchase?")
    page.select_option("select[name='trigger.type']", "delay")
    page.fill("input[name='trigger.seconds']", "5000")
    page.fill("input[name='ab.alpha']", "2")
    page.click("text=Create campaign")
    seconds = page.locator("label.field.invalid:has(input[name='trigger.seconds'])")
    assert "less than or equal to 3600" in seconds.locator(".field-error").inner_text()
    alpha = page.locator("label.field.invalid:has(input[name='ab.alpha'])")
    assert "less than or equal to 0.2" in alpha.locator(".field-error").inner_text()
    summary = page.locator(".error-summary").inner_text()
    assert "Trigger seconds" in summary and "Significance level" in summary
    shoot(page, "04-campaign-form-error")
    page.select_option("select[name='trigger.type']", "immediate")
    page.fill("input[name='ab.alpha']", "0.05")
    page.fill("input[name=priority]", "100")  # before the demo's own survey on the demo store
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
    frame = page.frame(name="preview-frame")

    def previews_the_edit() -> bool:
        """The frame holds the edited variant's preview and its popup draws it. The editor's
        own live refresh may submit once more after the click (the field it left changed), so
        the frame can be between documents: asked again until it settles."""
        try:
            shown = json.loads(frame.locator("#funnelcake-preview").text_content(timeout=1000))
            return (
                shown["content"]["steps"][1]["question"] == "Anything else?"
                and frame.locator("script[data-preview]").count() == 1
                and frame_has_dialog(frame)
                and "What stopped you from buying?"
                in frame.get_by_role("dialog").inner_text(timeout=1000)
            )
        except (PlaywrightError, ValueError):
            return False

    assert until(previews_the_edit, interval_s=0.25, page=page), frame.content()[:3000]
    shoot(page, "05-variant-editor")
    page.click("button.primary:text('Save variant')")
    page.wait_for_url("**/variants/*")
    assert "saved" in page.locator(".flash").inner_text()

    # Start it; the campaign page previews its variant with the real snippet.
    page.click("text=← Why no purchase?")
    overview = page.frame_locator(".variant-previews iframe").first
    overview.get_by_role("dialog").wait_for()
    shoot(page, "06-campaign")
    page.click("button:text('Start')")
    assert "running" in page.locator("h1 .status").inner_text()
    campaign_id = int(page.url.rstrip("/").split("/")[-1])

    # A visitor answers it on the demo store, with the real snippet.
    visitor = page.context.new_page()
    visitor.goto(f"{base}/demo/")
    dialog = visitor.get_by_role("dialog")
    dialog.wait_for(timeout=10_000)
    assert "What stopped you from buying?" in dialog.inner_text()
    visitor.get_by_role("radio", name="A friend", exact=True).click()
    visitor.get_by_role("button", name="Next").click()
    dialog.get_by_role("textbox").fill(SCRIPT)
    visitor.get_by_role("button", name="Next").click()
    assert until(lambda: "Thank you" in dialog.inner_text(), interval_s=0.25, page=visitor)
    shoot(visitor, "07-demo-store-answered")
    assert visitor.evaluate("window.__pwned") is None
    visitor.close()

    # The owner sees the response, the answer as text.
    page.goto(f"{base}/admin/sites/1/responses?campaign_id={campaign_id}")
    cell = page.locator("dl.answers dd").filter(has_text="bold?")
    assert until(lambda: cell.count() == 1, act=page.reload, interval_s=0.25, page=page)
    assert cell.inner_text() == SCRIPT  # shown as text
    assert page.locator("dl.answers dd").filter(has_text="A friend").count() == 1
    assert page.locator("dl.answers b").count() == 0
    assert page.evaluate("window.__pwned") is None
    shoot(page, "08-responses")

    # ... and the result: one visitor, one completion.
    page.goto(f"{base}/admin/campaigns/{campaign_id}/results")
    first = page.locator("table.results tbody tr").first
    assert first.locator("td[data-label=Visitors]").inner_text() == "1"
    assert first.locator("td[data-label=Conversions]").inner_text() == "1"
    assert page.locator(".chart-wide svg.chart").count() == 1
    shoot(page, "09-results")

    page.goto(f"{base}/admin/sites/1/funnel")
    assert page.locator(".chart-wide svg.chart").count() == 1
    shoot(page, "10-funnel")
    page.goto(f"{base}/admin/sites/1/coupons")
    shoot(page, "11-coupons")
    page.goto(f"{base}/admin/campaigns/1")
    shoot(page, "12-wheel-campaign")
    page.goto(f"{base}/admin/variants/1")
    shoot(page, "13-wheel-variant-editor")
    page.goto(f"{base}/admin/sites/1/campaigns")
    assert page.locator("text=Why no purchase?").count() == 1
    shoot(page, "14-campaigns-after")

    csp_violations = [e for e in page.console_errors if "Content Security Policy" in e]
    assert csp_violations == []


def test_live_preview_refresh_leaves_the_focus_in_the_editor(new_page, owner_site):
    base = owner_site.url
    page = new_page(viewport=WIDTHS["desktop"])
    log_in_page(page, base)
    page.goto(f"{base}/admin/variants/2")  # the demo's loyalty survey
    question = page.locator("textarea[name='content.steps.0.question']")
    question.click()
    page.keyboard.type(" Really?")
    page.wait_for_timeout(2500)  # the refresh and the snippet's own focus move into its popup
    page.keyboard.type(" Yes.")
    assert question.input_value().endswith(" Really? Yes.")


def test_form_posted_without_its_csrf_token_is_refused_and_explained(new_page, owner_site):
    base = owner_site.url
    page = new_page(viewport=WIDTHS["desktop"])
    log_in_page(page, base)
    page.goto(f"{base}/admin/campaigns/2")
    page.fill("input[name=name]", "Renamed by a forged form")
    page.evaluate("document.querySelector('form.settings input[name=csrf_token]').remove()")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("text=Save settings")
    assert posted.value.status == 400
    assert "The form was not sent" in page.locator("h1").inner_text()
    assert "CSRF" in page.locator("main").inner_text()
    shoot(page, "15-csrf-refused")
    page.goto(f"{base}/admin/campaigns/2")
    assert page.locator("input[name=name]").input_value() == "Loyalty questionnaire"


def test_answering_on_the_demo_store_with_the_real_snippet(new_page, owner_site):
    if not (PROJECT_ROOT / "static" / "widget.js").exists():
        pytest.skip("static/widget.js is not written yet")
    base = owner_site.url
    page = new_page(viewport=WIDTHS["desktop"])
    page.goto(f"{base}/demo/")
    dialog = page.locator("[role=dialog]")
    dialog.first.wait_for(timeout=8000)
    page.keyboard.press("Tab")
    shoot(page, "12-demo-store-popup")


def test_campaign_form_teaser_fields_fit_at_desktop_and_phone_widths(new_page, owner_site):
    base = owner_site.url
    page = new_page(viewport=WIDTHS["desktop"])
    log_in_page(page, base)
    page.click("text=Demo store")
    page.click("text=New survey")
    page.fill("input[name=name]", "Teased")
    page.fill("input[name='frequency.teaser.text']", "Get 10% off")
    page.select_option("select[name='frequency.teaser.side']", "left")
    page.fill("input[name='frequency.teaser.days']", "40")
    page.click("text=Create campaign")
    days = page.locator("label.field.invalid:has(input[name='frequency.teaser.days'])")
    assert "less than or equal to 30" in days.locator(".field-error").inner_text()
    page.locator("fieldset:has(legend:text('Teaser tab'))").scroll_into_view_if_needed()
    shoot(page, "05-campaign-form-teaser")
    fieldset = page.locator("fieldset:has(legend:text('Teaser tab'))")
    fieldset.screenshot(path=str(PROJECT_ROOT / "test-artifacts" / "admin" / "teaser-desktop.png"))
    page.set_viewport_size(WIDTHS["phone"])
    box = fieldset.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTHS["phone"]["width"], box
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTHS["phone"]["width"]
    fieldset.screenshot(path=str(PROJECT_ROOT / "test-artifacts" / "admin" / "teaser-phone.png"))
    page.fill("input[name='frequency.teaser.days']", "3")
    page.click("text=Create campaign")
    page.wait_for_url("**/variants/new")
