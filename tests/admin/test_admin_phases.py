"""The admin page and phases: a running test's forms warn and ask what a phase-starting change
does to the assignments, refuse it without the choice (the message under the choice), and the
results page links each phase."""

from sqlalchemy import select

from tests.admin.test_admin_campaigns import CAMPAIGN_FORM, SURVEY_VARIANT
from tests.helpers import decide, event, send_events
from widget_server.extensions import db
from widget_server.models import Campaign, Variant


def running_campaign_with_a_form_variant(page, client, admin, make_site):
    """A survey made through the forms (so that saving them unchanged changes nothing), then
    started; its id and its variant's."""
    site = make_site()
    form = {**CAMPAIGN_FORM, "ab.auto_promote": "false"}
    assert page.post(f"/admin/sites/{site['id']}/campaigns/new", form).status_code == 302
    campaign_id = db.session.scalar(select(Campaign.id))
    made = page.post(f"/admin/campaigns/{campaign_id}/variants/new", SURVEY_VARIANT)
    assert made.status_code == 302
    assert admin.post(f"/api/v1/admin/campaigns/{campaign_id}/start").status_code == 200
    variant_id = db.session.scalar(select(Variant.id))
    # A visitor was shown it: the test is under way (before that, edits start no phase).
    shown = decide(client, site, "visitor-seen-0001", url="https://shop.example/products/x",
                   device="desktop")  # fmt: skip
    assert [c["campaign_id"] for c in shown.json["campaigns"]] == [campaign_id]
    seen = [event("impression", "visitor-seen-0001", campaign_id, variant_id)]
    assert send_events(client, site, seen).status_code == 202
    return campaign_id, variant_id


def stored(campaign_id) -> Campaign:
    db.session.expire_all()
    return db.session.get(Campaign, campaign_id)


def test_only_a_running_tests_forms_ask_the_phase_choice(page, admin, make_site):
    site = make_site()
    form = {**CAMPAIGN_FORM}
    assert page.post(f"/admin/sites/{site['id']}/campaigns/new", form).status_code == 302
    campaign_id = db.session.scalar(select(Campaign.id))
    assert 'name="phase.assignments"' not in page.get(f"/admin/campaigns/{campaign_id}").text
    page.post(f"/admin/campaigns/{campaign_id}/variants/new", SURVEY_VARIANT)
    assert admin.post(f"/api/v1/admin/campaigns/{campaign_id}/start").status_code == 200
    html = page.get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)
    assert 'name="phase.assignments" value="sticky"' in html
    assert "starts phase 2" in html


def test_a_variant_weight_change_without_the_choice_is_refused_under_it(
    page, client, admin, make_site
):
    campaign_id, variant_id = running_campaign_with_a_form_variant(page, client, admin, make_site)

    response = page.post(f"/admin/variants/{variant_id}", {**SURVEY_VARIANT, "weight": "5"})

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Choose sticky or rerandomize assignments for the new phase." in html
    assert db.session.get(Variant, variant_id).weight == 2
    assert stored(campaign_id).phase == 1


def test_a_variant_weight_change_with_the_choice_starts_a_phase(page, client, admin, make_site):
    campaign_id, variant_id = running_campaign_with_a_form_variant(page, client, admin, make_site)
    form = {**SURVEY_VARIANT, "weight": "5", "phase.assignments": "rerandomize"}

    assert page.post(f"/admin/variants/{variant_id}", form).status_code == 302

    campaign = stored(campaign_id)
    assert campaign.phase == 2
    assert campaign.phase_history[0]["assignments"] == "rerandomize"
    html = page.get(f"/admin/campaigns/{campaign_id}/results").get_data(as_text=True)
    assert f"/admin/campaigns/{campaign_id}/results?phase=1" in html
    assert page.get(f"/admin/campaigns/{campaign_id}/results?phase=1").status_code == 200
    assert page.get(f"/admin/campaigns/{campaign_id}/results?phase=3").status_code == 404


def test_saving_a_running_campaigns_settings_with_a_new_name_starts_no_phase(
    page, client, admin, make_site
):
    campaign_id, _ = running_campaign_with_a_form_variant(page, client, admin, make_site)
    form = {**CAMPAIGN_FORM, "ab.auto_promote": "false", "name": "Renamed"}
    del form["kind"]

    response = page.post(f"/admin/campaigns/{campaign_id}", form)

    assert response.status_code == 302, response.get_data(as_text=True)
    assert stored(campaign_id).name == "Renamed" and stored(campaign_id).phase == 1


def test_a_targeting_change_of_a_running_campaign_needs_the_choice(page, client, admin, make_site):
    campaign_id, _ = running_campaign_with_a_form_variant(page, client, admin, make_site)
    form = {**CAMPAIGN_FORM, "ab.auto_promote": "false", "targeting.devices": ["mobile"]}
    del form["kind"]

    refused = page.post(f"/admin/campaigns/{campaign_id}", form)
    assert refused.status_code == 400
    assert "Choose sticky or rerandomize" in refused.get_data(as_text=True)
    assert stored(campaign_id).phase == 1

    saved = page.post(f"/admin/campaigns/{campaign_id}", {**form, "phase.assignments": "sticky"})
    assert saved.status_code == 302
    assert stored(campaign_id).phase == 2


def test_a_variant_added_to_a_test_in_progress_asks_the_choice_then_starts_a_phase(
    page, client, admin, make_site
):
    campaign_id, _ = running_campaign_with_a_form_variant(page, client, admin, make_site)
    path = f"/admin/campaigns/{campaign_id}/variants/new"
    assert 'name="phase.assignments" value="sticky"' in page.get(path).get_data(as_text=True)
    second = {**SURVEY_VARIANT, "name": "Second", "is_control": "false"}

    refused = page.post(path, second)

    assert refused.status_code == 400
    assert "Choose sticky or rerandomize" in refused.get_data(as_text=True)
    assert len(stored(campaign_id).variants) == 1 and stored(campaign_id).phase == 1
    assert page.post(path, {**second, "phase.assignments": "sticky"}).status_code == 302
    assert len(stored(campaign_id).variants) == 2 and stored(campaign_id).phase == 2
