"""Campaign templates: every draft is a valid admin API body, and the API lists them and creates
drafts from them."""

import pytest

from widget_server.schemas.campaigns import CampaignSchema, VariantSchema
from widget_server.schemas.content import load_content
from widget_server.services.campaigns import templates

TEMPLATE_IDS = [t.id for t in templates.TEMPLATES]


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_every_template_loads_through_the_admin_api_schemas(template_id):
    draft = templates.draft(template_id)
    loaded = CampaignSchema().load(draft)
    assert loaded["kind"] == templates.get_template(template_id).kind
    assert 1 <= len(loaded["variants"]) <= 2
    assert sum(v["is_control"] for v in loaded["variants"]) == 1
    for variant in draft["variants"]:
        loaded_variant = VariantSchema().load(variant)
        load_content(draft["kind"], loaded_variant["content"])


def test_template_ids_and_names_are_unique():
    assert len(set(TEMPLATE_IDS)) == len(TEMPLATE_IDS)
    assert len({t.name for t in templates.TEMPLATES}) == len(TEMPLATE_IDS)


def test_each_draft_is_a_new_copy():
    templates.draft("why_no_purchase")["variants"][0]["content"]["steps"].clear()
    assert templates.draft("why_no_purchase")["variants"][0]["content"]["steps"]


def test_the_loyalty_template_is_the_demos_questionnaire():
    from widget_server.demo import store

    assert store.loyalty_questionnaire is templates.loyalty_questionnaire
    contents = [v["content"] for v in templates.draft("loyalty")["variants"]]
    assert {s["dimension"] for s in contents[0]["steps"][:2]} == {"emotional", "intentional"}
    assert contents[0]["steps"][2]["options"][0]["dimension"] == "action"


@pytest.mark.parametrize(
    ("template_id", "check"),
    [
        ("why_no_purchase", lambda d: d["trigger"]["type"] == "exit_intent"),
        ("why_no_purchase", lambda d: d["targeting"]["url_include"] == ["/cart*"]),
        ("why_no_purchase", lambda d: d["targeting"]["cart_value_min"] > 0),
        ("exit", lambda d: d["trigger"]["type"] == "exit_intent"),
        ("post_purchase", lambda d: any("thank" in p for p in d["targeting"]["url_include"])),
        ("nps", lambda d: d["variants"][0]["content"]["steps"][0]["type"] == "nps"),
        ("csat", lambda d: d["variants"][0]["content"]["steps"][0]["dimension"] == "csat"),
        ("ces", lambda d: d["variants"][0]["content"]["steps"][0]["dimension"] == "ces"),
        ("spin_to_win", lambda d: d["kind"] == "wheel"),
    ],
)
def test_templates_target_what_their_description_promises(template_id, check):
    assert check(templates.draft(template_id))


def test_a_pool_replaces_the_placeholder_prize():
    draft = templates.draft("spin_to_win", pool_id=7)
    rewards = [s["reward"] for s in draft["variants"][0]["content"]["slices"]]
    assert {"type": "pool", "pool_id": 7} in rewards
    assert not templates.hands_out_placeholder(draft["variants"][0]["content"])


@pytest.mark.parametrize(
    ("template_id", "pool_id", "field"),
    [("nope", None, "template"), ("nps", 7, "pool_id")],
)
def test_bad_choices_are_refused_naming_the_field(template_id, pool_id, field):
    from widget_server.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as caught:
        templates.draft(template_id, pool_id=pool_id)
    assert set(caught.value.fields) == {field}


# -- the admin API --------------------------------------------------------------------------------


def test_api_lists_every_template_with_its_draft(admin):
    listed = admin.get("/api/v1/admin/campaign-templates").json["templates"]
    assert [t["id"] for t in listed] == TEMPLATE_IDS
    assert set(listed[0]) == {"id", "name", "description", "kind", "draft"}
    assert listed[0]["draft"] == templates.draft(TEMPLATE_IDS[0])


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_api_creates_a_draft_from_each_template(admin, make_site, template_id):
    site = make_site()
    url = f"/api/v1/admin/sites/{site['id']}/campaigns/from-template"
    response = admin.post(url, json={"template": template_id})
    assert response.status_code == 201, response.json
    campaign = response.json
    draft = templates.draft(template_id)
    assert (campaign["status"], campaign["name"]) == ("draft", draft["name"])
    assert campaign["trigger"]["type"] == draft["trigger"]["type"]
    assert [v["name"] for v in campaign["variants"]] == [v["name"] for v in draft["variants"]]
    assert admin.get(f"/api/v1/admin/campaigns/{campaign['id']}").status_code == 200


def test_api_names_the_draft_as_asked(admin, make_site):
    site = make_site()
    url = f"/api/v1/admin/sites/{site['id']}/campaigns/from-template"
    response = admin.post(url, json={"template": "nps", "name": "Q3 NPS"})
    assert response.json["name"] == "Q3 NPS"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "template"),
        ({"template": "nope"}, "template"),
        ({"template": "nps", "name": ""}, "name"),
        ({"template": "nps", "pool_id": 1}, "pool_id"),
    ],
)
def test_api_refuses_a_bad_choice_naming_the_field(admin, make_site, body, field):
    site = make_site()
    response = admin.post(f"/api/v1/admin/sites/{site['id']}/campaigns/from-template", json=body)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "validation_error"
    assert field in response.json["error"]["fields"]


def _pool(admin, site) -> dict:
    return admin.post(
        f"/api/v1/admin/sites/{site['id']}/coupon-pools", json={"name": "10% off"}
    ).json


def test_wheel_with_a_pool_hands_out_its_codes_and_can_start(admin, make_site):
    site = make_site()
    pool = _pool(admin, site)
    url = f"/api/v1/admin/sites/{site['id']}/campaigns/from-template"
    wheel = admin.post(url, json={"template": "spin_to_win", "pool_id": pool["id"]}).json
    slices = wheel["variants"][0]["content"]["slices"]
    assert {"type": "pool", "pool_id": pool["id"]} in [s["reward"] for s in slices]
    started = admin.post(f"/api/v1/admin/campaigns/{wheel['id']}/start")
    assert started.status_code == 200, started.json


def test_wheel_pool_of_another_site_is_refused(admin, make_site):
    site, other = make_site(), make_site("Other")
    pool = _pool(admin, other)
    url = f"/api/v1/admin/sites/{site['id']}/campaigns/from-template"
    response = admin.post(url, json={"template": "spin_to_win", "pool_id": pool["id"]})
    assert response.status_code == 400
    assert "variants.0.content.slices.0.reward.pool_id" in response.json["error"]["fields"]


def test_wheel_still_handing_out_the_placeholder_code_cannot_start(admin, make_site):
    site = make_site()
    url = f"/api/v1/admin/sites/{site['id']}/campaigns/from-template"
    wheel = admin.post(url, json={"template": "spin_to_win"}).json
    response = admin.post(f"/api/v1/admin/campaigns/{wheel['id']}/start")
    assert response.status_code == 409
    assert templates.PLACEHOLDER_CODE in response.json["error"]["message"]
    variant = wheel["variants"][0]
    content = variant["content"]
    content["slices"][0]["reward"] = {"type": "code", "code": "WELCOME10"}
    admin.patch(f"/api/v1/admin/variants/{variant['id']}", json={"content": content})
    assert admin.post(f"/api/v1/admin/campaigns/{wheel['id']}/start").status_code == 200


def test_survey_templates_start_as_they_are(admin, make_site):
    site = make_site()
    url = f"/api/v1/admin/sites/{site['id']}/campaigns/from-template"
    survey = admin.post(url, json={"template": "why_no_purchase"}).json
    assert admin.post(f"/api/v1/admin/campaigns/{survey['id']}/start").status_code == 200
