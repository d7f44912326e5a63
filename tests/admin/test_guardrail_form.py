"""The campaign form's guardrail metrics (one a line) and variance reduction: what the API stores,
shown again for editing, and the schema's messages next to the field."""

import pytest

from tests.admin.test_admin_campaigns import CAMPAIGN_FORM
from widget_server.admin import forms
from widget_server.extensions import db
from widget_server.models import Campaign


@pytest.mark.parametrize(
    ("lines", "stored"),
    [
        ("", None),
        ("none", []),
        (
            "revenue 0.02\norder",
            [{"metric": "revenue", "max_drop": 0.02}, {"metric": "order", "max_drop": 0.0}],
        ),
        ("close 0.1", [{"metric": "close", "max_drop": 0.1}]),
    ],
)
def test_guardrail_lines_are_stored_as_the_api_would(page, admin, make_site, lines, stored):
    site = make_site()
    created = admin.post(
        f"/api/v1/admin/sites/{site['id']}/campaigns", json={"name": "S", "kind": "survey"}
    ).json
    form = {**CAMPAIGN_FORM, "ab.guardrails": lines, "ab.adjustment": "none"}
    del form["kind"]
    assert page.post(f"/admin/campaigns/{created['id']}", form).status_code == 302
    campaign = db.session.get(Campaign, created["id"])
    db.session.refresh(campaign)
    assert campaign.ab.get("guardrails") == stored
    assert campaign.ab["adjustment"] == "none"
    # Shown again for editing, and saved again unchanged: a later edit keeps them.
    shown = forms.campaign_to_state(campaign)["ab"]["guardrails"]
    again = {**form, "ab.guardrails": shown, "name": "S2"}
    assert page.post(f"/admin/campaigns/{created['id']}", again).status_code == 302
    db.session.refresh(campaign)
    assert campaign.ab.get("guardrails") == stored


def test_a_bad_guardrail_line_is_named_next_to_the_field(page, make_site):
    site = make_site()
    form = {**CAMPAIGN_FORM, "ab.guardrails": "bounce 0.1"}
    response = page.post(f"/admin/sites/{site['id']}/campaigns/new", form)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Guardrail metrics" in html and "Must be one of: revenue, order, close." in html
