"""Campaign and variant forms: they post the API's payloads and show the API's messages."""

import html as html_module
import json
import re

import pytest
from sqlalchemy import select

from tests.helpers import decide, event, send_events, survey_content
from widget_server.admin import forms
from widget_server.extensions import db
from widget_server.models import Campaign, Variant

CAMPAIGN_FORM = {
    "name": "Exit survey",
    "kind": "survey",
    "priority": "5",
    "trigger.type": "scroll",
    "trigger.percent": "50",
    "trigger.seconds": "7",
    "targeting.url_include": "/products/*\n\n/sale*",
    "targeting.url_exclude": "",
    "targeting.devices": ["mobile", "desktop"],
    "targeting.visitor": "any",
    "frequency.sampling_percent": "100",
    "frequency.stop_after_complete": ["false", "true"],
    "ab.method": "sequential",
    "ab.alpha": "0.05",
    "ab.auto_promote": "false",
}


def field_messages(html: str, name: str) -> list[str]:
    """The error messages shown inside the label of the input named ``name``."""
    match = re.search(
        r'<label class="field[^"]*">(?:(?!</label>).)*?name="' + re.escape(name) + r'"'
        r"((?:(?!</label>).)*)</label>",
        html,
        re.S,
    )
    assert match, f"no field {name}"
    found = re.findall(r'<span class="field-error"[^>]*>([^<]*)</span>', match.group(1))
    return [html_module.unescape(message) for message in found]


def test_campaign_created_through_the_form_is_stored_as_the_api_would(page, make_site):
    site = make_site()
    response = page.post(f"/admin/sites/{site['id']}/campaigns/new", CAMPAIGN_FORM)
    assert response.status_code == 302
    campaign = db.session.scalar(select(Campaign).where(Campaign.name == "Exit survey"))
    assert response.headers["Location"] == f"/admin/campaigns/{campaign.id}/variants/new"
    assert campaign.status == "draft" and campaign.priority == 5
    assert campaign.trigger == {"type": "scroll", "percent": 50}
    assert campaign.targeting["url_include"] == ["/products/*", "/sale*"]
    assert campaign.targeting["devices"] == ["mobile", "desktop"]
    assert campaign.frequency["stop_after_complete"] is True
    assert campaign.ab["auto_promote"] is False


def test_bad_campaign_values_show_the_api_messages_next_to_their_fields(page, make_site):
    site = make_site()
    form = {
        **CAMPAIGN_FORM,
        "name": "",
        "trigger.type": "delay",
        "trigger.seconds": "99999",
        "ab.alpha": "0.9",
        "ab.webhook_url": "not a url",
    }
    response = page.post(f"/admin/sites/{site['id']}/campaigns/new", form)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert field_messages(html, "name") == ["Length must be between 1 and 200."]
    assert field_messages(html, "trigger.seconds") == [
        "Must be greater than or equal to 0 and less than or equal to 3600."
    ]
    assert field_messages(html, "ab.alpha") == [
        "Must be greater than or equal to 0.001 and less than or equal to 0.2."
    ]
    assert field_messages(html, "ab.webhook_url") == ["Not a valid URL."]
    assert 'value="99999"' in html  # what was typed is shown again
    assert db.session.scalar(select(Campaign)) is None


def test_editing_settings_keeps_attribute_rules_the_form_does_not_show(page, admin, make_site):
    site = make_site()
    created = admin.post(
        f"/api/v1/admin/sites/{site['id']}/campaigns",
        json={
            "name": "Gold",
            "kind": "survey",
            "targeting": {"attributes": [{"key": "plan", "op": "equals", "value": "gold"}]},
        },
    ).json
    form = {**CAMPAIGN_FORM, "name": "Gold members"}
    del form["kind"]
    response = page.post(f"/admin/campaigns/{created['id']}", form)
    assert response.status_code == 302
    campaign = db.session.get(Campaign, created["id"])
    db.session.refresh(campaign)
    assert campaign.name == "Gold members" and campaign.kind == "survey"
    assert campaign.targeting["attributes"] == [{"key": "plan", "op": "equals", "value": "gold"}]


SURVEY_VARIANT = {
    "name": "A",
    "weight": "2",
    "is_control": ["false", "true"],
    "content.title": "Quick question",
    "content.steps.0.id": "found",
    "content.steps.0.type": "single_choice",
    "content.steps.0.question": "How did you find us?",
    "content.steps.0.required": ["false", "true"],
    "content.steps.0.options.0.label": "Search engine",
    "content.steps.0.options.0.id": "",
    "content.steps.0.options.1.label": "A friend",
    "content.steps.0.options.1.id": "friend",
    "content.steps.0.options.1.dimension": "action",
    "content.steps.0.options.1.score": "5",
    "content.steps.0.options.2.label": "",
    "content.steps.0.next.0.op": "equals",
    "content.steps.0.next.0.value": "friend",
    "content.steps.0.next.0.goto": "end",
    "content.steps.1.id": "likely",
    "content.steps.1.type": "nps",
    "content.steps.1.question": "Would you recommend us?",
    "content.steps.1.required": ["false"],
    "content.steps.1.dimension": "nps",
    "content.steps.1.options.0.label": "",
    "content.thank_you.title": "Thanks!",
    "content.thank_you.reward.campaign_id": "",
}


def test_survey_variant_from_the_form_is_the_content_the_api_takes(page, make_site, admin):
    site = make_site()
    campaign = admin.post(
        f"/api/v1/admin/sites/{site['id']}/campaigns", json={"name": "S", "kind": "survey"}
    ).json
    response = page.post(f"/admin/campaigns/{campaign['id']}/variants/new", SURVEY_VARIANT)
    assert response.status_code == 302, response.get_data(as_text=True)
    variant = db.session.scalar(select(Variant))
    assert variant.is_control is True and variant.weight == 2
    steps = variant.content["steps"]
    assert [o["id"] for o in steps[0]["options"]] == ["search_engine", "friend"]
    assert steps[0]["options"][1] == {
        "id": "friend",
        "label": "A friend",
        "dimension": "action",
        "score": 5.0,
    }
    assert steps[0]["next"] == [{"when": {"equals": "friend"}, "goto": "end"}]
    assert steps[1]["type"] == "nps" and steps[1]["required"] is False
    assert steps[1]["dimension"] == "nps" and "options" not in steps[1]
    assert variant.content["thank_you"] == {"title": "Thanks!"}
    # The stored variant reads back into the same form.
    html = page.get(f"/admin/variants/{variant.id}").get_data(as_text=True)
    assert 'name="content.steps.0.options.0.id" value="search_engine"' in html
    assert re.search(r'<option value="end" selected>', html)


def test_bad_variant_values_show_the_api_messages_at_the_dotted_field(page, make_site, admin):
    site = make_site()
    campaign = admin.post(
        f"/api/v1/admin/sites/{site['id']}/campaigns", json={"name": "S", "kind": "survey"}
    ).json
    form = {
        **SURVEY_VARIANT,
        "weight": "-1",
        "content.steps.1.id": "",
        "content.steps.0.next.0.value": "nobody",
    }
    response = page.post(f"/admin/campaigns/{campaign['id']}/variants/new", form)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    # The variant's own fields and its content are checked in one go: every problem at once.
    assert field_messages(html, "weight") == ["Must be 0 or more."]
    assert field_messages(html, "content.steps.1.id") == ["Use 1-64 letters, digits, '_' or '-'."]
    assert "No option with id &#39;nobody&#39;." in html
    assert db.session.scalar(select(Variant)) is None


def test_error_summary_names_the_fields_as_the_form_does_and_links_to_them(page, make_site, admin):
    site = make_site()
    campaign = admin.post(
        f"/api/v1/admin/sites/{site['id']}/campaigns", json={"name": "S", "kind": "survey"}
    ).json
    form = {**SURVEY_VARIANT, "weight": "-1", "content.steps.1.id": ""}
    html = page.post(f"/admin/campaigns/{campaign['id']}/variants/new", form).get_data(as_text=True)
    summary = html.split('class="error-summary"', 1)[1].split("</div>", 1)[0]
    assert '<a href="#f-weight">Traffic weight</a>: Must be 0 or more.' in summary
    assert '<a href="#f-content.steps.1.id">Question 2 › id</a>' in summary
    assert summary.index("Traffic weight") < summary.index("Question 2")  # in the form's order
    assert 'id="f-content.steps.1.id"' in html


@pytest.mark.parametrize(
    ("key", "title"),
    [
        ("name", "Name"),
        ("ab.alpha", "Significance level (alpha)"),
        ("trigger.seconds", "Trigger seconds"),
        ("content.steps.0.question", "Question 1 › question"),
        ("content.steps.2.options.1.label", "Question 3 › option 2 › label"),
        ("content.steps.0.next.0.when", "Question 1 › rule 1 › condition"),
        ("content.steps.1.scale.max", "Question 2 › scale › to"),
        ("content.slices.3.reward.pool_id", "Slice 4 › reward › pool"),
        ("content.thank_you.reward.campaign_id", "Thank-you step › reward › wheel offered"),
        ("content.email_capture.consent_text", "E-mail before the spin › consent text"),
    ],
)
def test_field_titles_of_the_error_summary(key, title):
    assert forms.field_title(key) == title


def test_add_and_remove_buttons_change_the_form_without_saving(page, make_site, admin):
    site = make_site()
    campaign = admin.post(
        f"/api/v1/admin/sites/{site['id']}/campaigns", json={"name": "S", "kind": "survey"}
    ).json
    url = f"/admin/campaigns/{campaign['id']}/variants/new"
    html = page.post(url, {**SURVEY_VARIANT, "action": "add:content.steps"}).get_data(as_text=True)
    assert 'name="content.steps.2.id" value="q1"' in html
    html = page.post(url, {**SURVEY_VARIANT, "action": "remove:content.steps.0"}).get_data(
        as_text=True
    )
    assert 'name="content.steps.0.id" value="likely"' in html
    assert db.session.scalar(select(Variant)) is None


def test_wheel_variant_slices_from_the_form(page, make_site, admin):
    site = make_site()
    campaign = admin.post(
        f"/api/v1/admin/sites/{site['id']}/campaigns", json={"name": "W", "kind": "wheel"}
    ).json
    form = {
        "name": "Wheel A",
        "weight": "1",
        "content.title": "Spin!",
        "content.email_capture.enabled": ["false", "true"],
        "content.email_capture.required": ["false"],
        "content.slices.0.label": "10% off",
        "content.slices.0.color": "#ff8800",
        "content.slices.0.weight": "1",
        "content.slices.0.reward.type": "code",
        "content.slices.0.reward.code": "SAVE10",
        "content.slices.0.expires_in_minutes": "45",
        "content.slices.1.label": "No luck",
        "content.slices.1.color": "#123456",
        "content.slices.1.weight": "3",
        "content.slices.1.reward.type": "none",
        "content.slices.1.reward.code": "ignored",
        "content.slices.1.expires_in_minutes": "10",
    }
    response = page.post(f"/admin/campaigns/{campaign['id']}/variants/new", form)
    assert response.status_code == 302, response.get_data(as_text=True)
    content = db.session.scalar(select(Variant)).content
    assert content["email_capture"] == {"enabled": True, "required": False}
    assert content["slices"][0]["reward"] == {"type": "code", "code": "SAVE10"}
    assert content["slices"][0]["expires_in_minutes"] == 45
    assert content["slices"][1]["reward"] == {"type": "none"}
    assert "expires_in_minutes" not in content["slices"][1]
    edit = page.get(response.headers["Location"]).get_data(as_text=True)
    assert 'name="content.slices.0.expires_in_minutes" value="45"' in edit
    form["content.slices.0.color"] = "orange"
    form["content.slices.0.expires_in_minutes"] = "20000"
    form["content.slices.1.reward.type"] = "code"
    html = page.post(f"/admin/campaigns/{campaign['id']}/variants/new", form).get_data(as_text=True)
    assert field_messages(html, "content.slices.0.color") == ["Use a colour like #ff8800."]
    assert field_messages(html, "content.slices.0.expires_in_minutes") == [
        "Must be 1 to 10,080 minutes."
    ]


def test_wheel_slice_picks_its_pool_from_the_sites_pools_with_their_stock(page, make_site, admin):
    site = make_site()
    pool = admin.post(f"/api/v1/admin/sites/{site['id']}/coupon-pools", json={"name": "Spring"})
    assert pool.status_code == 201, pool.json
    pool_id = pool.json["id"]
    admin.post(f"/api/v1/admin/coupon-pools/{pool_id}/import", json={"codes": ["AAA-1", "AAA-2"]})
    campaign = admin.post(
        f"/api/v1/admin/sites/{site['id']}/campaigns", json={"name": "W", "kind": "wheel"}
    ).json
    html = page.get(f"/admin/campaigns/{campaign['id']}/variants/new").get_data(as_text=True)
    assert f'<option value="{pool_id}">Spring (2 left)</option>' in html
    form = {
        "name": "A",
        "weight": "1",
        "content.slices.0.label": "Spring code",
        "content.slices.0.weight": "1",
        "content.slices.0.reward.type": "pool",
        "content.slices.0.reward.pool_id": str(pool_id),
        "content.slices.1.label": "No luck",
        "content.slices.1.weight": "1",
        "content.slices.1.reward.type": "none",
    }
    response = page.post(f"/admin/campaigns/{campaign['id']}/variants/new", form)
    assert response.status_code == 302, response.get_data(as_text=True)
    slices = db.session.scalar(select(Variant)).content["slices"]
    assert slices[0]["reward"] == {"type": "pool", "pool_id": pool_id}
    edit = page.get(response.headers["Location"]).get_data(as_text=True)
    assert f'<option value="{pool_id}" selected>Spring (2 left)</option>' in edit


def test_campaign_page_previews_every_variant_with_the_snippet(page, make_site, make_campaign):
    site = make_site()
    campaign = make_campaign(site, start=False)
    html = page.get(f"/admin/campaigns/{campaign['id']}").get_data(as_text=True)
    for variant in campaign["variants"]:
        assert f'src="/admin/variants/{variant["id"]}/preview"' in html


def test_start_pause_complete_buttons(page, make_site, make_campaign):
    site = make_site()
    campaign = make_campaign(site, start=False)
    url = f"/admin/campaigns/{campaign['id']}"
    page.post(url + "/start")
    assert db.session.get(Campaign, campaign["id"]).status == "running"
    page.post(url + "/pause")
    db.session.expire_all()
    assert db.session.get(Campaign, campaign["id"]).status == "paused"
    response = page.post(url + "/pause")
    assert response.status_code == 302
    assert "Cannot pause a campaign that is paused." in page.get(url).get_data(as_text=True)
    page.post(url + "/complete")
    db.session.expire_all()
    assert db.session.get(Campaign, campaign["id"]).status == "completed"


def test_preview_frame_loads_the_real_snippet_with_the_content(page, make_site, make_campaign):
    site = make_site()
    campaign = make_campaign(site, variants=[{"name": "A", "content": survey_content()}])
    response = page.get(f"/admin/variants/{campaign['variants'][0]['id']}/preview")
    html = response.get_data(as_text=True)
    assert 'src="/static/widget.js"' in html and 'data-preview="funnelcake-preview"' in html
    assert "How did you find us?" in html
    assert "frame-ancestors 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_unsaved_preview_escapes_script_end_tags_in_the_content(page, make_site, admin):
    site = make_site()
    campaign = admin.post(
        f"/api/v1/admin/sites/{site['id']}/campaigns", json={"name": "S", "kind": "survey"}
    ).json
    form = {**SURVEY_VARIANT, "content.steps.0.question": "</script><script>alert(1)</script>"}
    html = page.post(f"/admin/campaigns/{campaign['id']}/preview", form).get_data(as_text=True)
    assert "<script>alert(1)" not in html
    assert "\\u003c/script\\u003e" in html


def test_webhook_to_a_private_address_is_refused_next_to_its_field(page, make_site):
    site = make_site()
    form = {**CAMPAIGN_FORM, "ab.webhook_url": "http://169.254.169.254/latest/meta-data/"}
    response = page.post(f"/admin/sites/{site['id']}/campaigns/new", form)
    assert response.status_code == 400
    [message] = field_messages(response.get_data(as_text=True), "ab.webhook_url")
    assert message.startswith("169.254.169.254 is not a public address")
    assert db.session.scalar(select(Campaign)) is None


def test_a_recurring_survey_from_the_form_and_its_bounds(page, make_site):
    site = make_site()
    url = f"/admin/sites/{site['id']}/campaigns/new"
    html = page.post(url, {**CAMPAIGN_FORM, "frequency.repeat_after_days": "0"}).get_data(
        as_text=True
    )
    assert field_messages(html, "frequency.repeat_after_days") == [
        "Must be greater than or equal to 1 and less than or equal to 3650."
    ]
    response = page.post(url, {**CAMPAIGN_FORM, "frequency.repeat_after_days": "90"})
    assert response.status_code == 302
    campaign = db.session.scalar(select(Campaign).where(Campaign.name == "Exit survey"))
    assert campaign.frequency["repeat_after_days"] == 90


def test_teaser_fields_are_stored_shown_again_and_removed_when_emptied(page, make_site):
    site = make_site()
    form = {
        **CAMPAIGN_FORM,
        "frequency.teaser.text": '{"en": "Get 10% off", "de": "10 % Rabatt"}',
        "frequency.teaser.side": "left",
        "frequency.teaser.days": "3",
    }
    assert page.post(f"/admin/sites/{site['id']}/campaigns/new", form).status_code == 302
    campaign = db.session.scalar(select(Campaign).where(Campaign.name == "Exit survey"))
    assert campaign.frequency["teaser"] == {
        "text": {"en": "Get 10% off", "de": "10 % Rabatt"},
        "side": "left",
        "days": 3,
    }
    edit = page.get(f"/admin/campaigns/{campaign.id}").get_data(as_text=True)
    shown = re.search(r'name="frequency.teaser.text" value="([^"]*)"', edit).group(1)
    assert json.loads(html_module.unescape(shown)) == {"en": "Get 10% off", "de": "10 % Rabatt"}
    assert '<option value="left" selected>' in edit

    emptied = {**form, "frequency.teaser.text": "", "frequency.teaser.days": ""}
    assert page.post(f"/admin/campaigns/{campaign.id}", emptied).status_code == 302
    db.session.expire_all()
    assert "teaser" not in campaign.frequency


@pytest.mark.parametrize(
    ("days", "message"), [("0", "less than or equal to 30"), ("2.5", "integer")]
)
def test_bad_teaser_days_show_the_api_message_under_the_field(page, make_site, days, message):
    site = make_site()
    form = {**CAMPAIGN_FORM, "frequency.teaser.text": "Hi", "frequency.teaser.days": days}
    response = page.post(f"/admin/sites/{site['id']}/campaigns/new", form)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert any(message in m for m in field_messages(html, "frequency.teaser.days")), html
    assert "Teaser tab days" in html


def test_results_page_shows_the_teaser_figures_beside_the_test(
    page, client, make_site, make_campaign
):
    site = make_site()
    campaign = make_campaign(site, frequency={"teaser": {"text": "Hi", "days": 3}})
    ids = (campaign["id"], campaign["variants"][0]["id"])
    decide(client, site)
    kinds = ("impression", "close", "teaser_shown", "teaser_open")
    send_events(client, site, [event(kind, "visitor-0001", *ids) for kind in kinds])
    html = page.get(f"/admin/campaigns/{campaign['id']}/results").get_data(as_text=True)
    assert "A seen by 1 visitors, reopened by 1." in html


def test_a_quota_from_the_form(page, make_site):
    site = make_site()
    url = f"/admin/sites/{site['id']}/campaigns/new"
    html = page.post(url, {**CAMPAIGN_FORM, "frequency.max_responses": "0"}).get_data(as_text=True)
    assert field_messages(html, "frequency.max_responses") == [
        "Must be greater than or equal to 1."
    ]
    assert page.post(url, {**CAMPAIGN_FORM, "frequency.max_responses": "200"}).status_code == 302
    campaign = db.session.scalar(select(Campaign).where(Campaign.name == "Exit survey"))
    assert campaign.frequency["max_responses"] == 200


def test_hidden_fields_from_the_variant_form_are_kept_by_a_later_edit(page, make_site, admin):
    site = make_site()
    created = admin.post(
        f"/api/v1/admin/sites/{site['id']}/campaigns",
        json={"name": "Survey", "kind": "survey"},
    ).json
    url = f"/admin/campaigns/{created['id']}/variants/new"
    form = {
        **SURVEY_VARIANT,
        "content.hidden_fields.0.name": "utm",
        "content.hidden_fields.0.source": "query",
        "content.hidden_fields.0.key": "utm_source",
    }
    assert page.post(url, form).status_code == 302
    variant = db.session.scalar(select(Variant).where(Variant.campaign_id == created["id"]))
    assert variant.content["hidden_fields"] == [
        {"name": "utm", "source": "query", "key": "utm_source"}
    ]
    edit = page.get(f"/admin/variants/{variant.id}").get_data(as_text=True)
    assert 'value="utm_source"' in edit
    bad = {**form, "content.hidden_fields.0.source": "cookie"}
    html = page.post(url, bad).get_data(as_text=True)
    assert field_messages(html, "content.hidden_fields.0.source") == [
        "Must be one of: query, data, identify."
    ]


def test_answer_quotas_from_the_form_kept_by_a_later_edit_and_named_when_wrong(page, make_site):
    site = make_site()
    url = f"/admin/sites/{site['id']}/campaigns/new"
    form = {**CAMPAIGN_FORM, "frequency.answer_quotas": "reason price 200\nreason  delivery 50"}
    assert page.post(url, form).status_code == 302
    campaign = db.session.scalar(select(Campaign).where(Campaign.name == "Exit survey"))
    quotas = [
        {"step_id": "reason", "option_id": "price", "max": 200},
        {"step_id": "reason", "option_id": "delivery", "max": 50},
    ]
    assert campaign.frequency["answer_quotas"] == quotas
    edit = page.get(f"/admin/campaigns/{campaign.id}").get_data(as_text=True)
    assert "reason price 200\nreason delivery 50" in html_module.unescape(edit)
    assert page.post(f"/admin/campaigns/{campaign.id}", form).status_code == 302
    db.session.expire_all()
    assert campaign.frequency["answer_quotas"] == quotas
    bad = page.post(url, {**form, "name": "Other", "frequency.answer_quotas": "reason price"})
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    assert "Missing data for required field." in html and "Answer quotas" in html
