"""A running test's variant form in headless Chromium: the phase box warns, a weight change is
refused under it until a choice is made, and the results page then links both phases."""

from datetime import date

import pytest
from sqlalchemy import select

from tests.admin.helpers import WIDTHS, log_in_page, shoot
from widget_server.extensions import db
from widget_server.models import EXPOSURE, Campaign, VariantMetric

pytestmark = pytest.mark.browser


def test_a_weight_change_of_a_running_test_asks_sticky_or_rerandomise(new_page, owner_site):
    with owner_site.app.app_context():
        campaign = db.session.scalars(
            select(Campaign).where(Campaign.status == "running", Campaign.kind == "survey")
        ).first()
        campaign_id, variant = campaign.id, campaign.variants[0]
        # One visitor was shown it: the test is under way.
        exposure = VariantMetric(
            campaign_id=campaign_id,
            variant_id=variant.id,
            metric=EXPOSURE,
            phase=1,
            day=date.today(),
            visitors=1,
            conversions=0,
            value_sum=0.0,
            value_sum_squares=0.0,
        )
        db.session.add(exposure)
        db.session.commit()
        variant_id, weight = variant.id, variant.weight
    base = owner_site.url
    page = new_page(viewport=WIDTHS["desktop"])
    log_in_page(page, base)
    page.goto(f"{base}/admin/variants/{variant_id}")
    box = page.locator("fieldset.phase-choice").first
    assert "starts phase 2" in box.inner_text()

    page.fill("input[name=weight]", str(weight + 2))
    page.click("button.primary:text('Save variant')")

    box = page.locator("fieldset.phase-choice.invalid").first
    assert "Choose sticky or rerandomize" in box.locator(".field-error").inner_text()
    shoot(page, "phase-choice-refused")
    box.locator("input[value=sticky]").check()
    page.click("button.primary:text('Save variant')")
    page.wait_for_url(f"**/admin/variants/{variant_id}")
    page.goto(f"{base}/admin/campaigns/{campaign_id}/results")
    phases = page.locator("nav.phases")
    assert "visitors kept their variant" in phases.inner_text()
    phases.locator("a", has_text="1").click()
    page.wait_for_url("**/results?phase=1")
    assert page.locator("nav.phases [aria-current=page]").inner_text() == "1"
