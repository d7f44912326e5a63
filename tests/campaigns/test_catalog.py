"""The catalog through the admin API: CRUD of sites, campaigns and variants, content validation,
the campaign lifecycle."""

import pytest

from tests.helpers import survey_content


def test_create_site_returns_keys_and_secret(admin):
    response = admin.post(
        "/api/v1/admin/sites",
        json={"name": "Shop", "allowed_origins": ["https://Shop.example/"]},
    )
    assert response.status_code == 201
    site = response.json
    assert site["site_key"].startswith("pk_")
    assert site["secret"].startswith("sk_")
    assert site["allowed_origins"] == ["https://shop.example"]
    listed = admin.get("/api/v1/admin/sites").json["sites"]
    assert [s["id"] for s in listed] == [site["id"]]
    assert "secret" not in listed[0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "x", "allowed_origins": ["shop.example"]}, "allowed_origins.0"),
        ({"name": "x", "allowed_origins": ["https://shop.example/path"]}, "allowed_origins.0"),
        ({"name": "x", "settings": {"cooldown_hours": -1}}, "settings.cooldown_hours"),
    ],
)
def test_invalid_site_is_refused_naming_the_field(admin, body, field):
    response = admin.post("/api/v1/admin/sites", json=body)
    assert response.status_code == 400
    assert field in response.json["error"]["fields"]


def _step(step_id, **extra):
    return {"id": step_id, "type": "scale", "question": "How much?", **extra}


INVALID_CONTENT = [
    (
        "step that points to a missing step",
        {"steps": [_step("a", next=[{"goto": "zzz"}]), _step("b")]},
        "variants.0.content.steps.0.next.0.goto",
    ),
    (
        "unknown question type",
        {"steps": [{"id": "a", "type": "slider", "question": "?"}]},
        "variants.0.content.steps.0.type",
    ),
    (
        "duplicate option id",
        {
            "steps": [
                {
                    "id": "a",
                    "type": "single_choice",
                    "question": "?",
                    "options": [{"id": "x", "label": "X"}, {"id": "x", "label": "Y"}],
                }
            ]
        },
        "variants.0.content.steps.0.options.1.id",
    ),
    (
        "duplicate step id",
        {"steps": [_step("a"), _step("a")]},
        "variants.0.content.steps.1.id",
    ),
    (
        "branch on an option that does not exist",
        {
            "steps": [
                {
                    "id": "a",
                    "type": "single_choice",
                    "question": "?",
                    "options": [{"id": "x", "label": "X"}, {"id": "y", "label": "Y"}],
                    "next": [{"when": {"equals": "z"}, "goto": "end"}],
                }
            ]
        },
        "variants.0.content.steps.0.next.0.when",
    ),
    ("no steps", {"steps": []}, "variants.0.content.steps"),
    (
        "blank question",
        {"steps": [{"id": "a", "type": "text", "question": "   "}]},
        "variants.0.content.steps.0.question",
    ),
    (
        "blank option label in one locale",
        {
            "steps": [
                {
                    "id": "a",
                    "type": "single_choice",
                    "question": "?",
                    "options": [
                        {"id": "x", "label": {"en": "X", "de": ""}},
                        {"id": "y", "label": "Y"},
                    ],
                }
            ]
        },
        "variants.0.content.steps.0.options.0.label",
    ),
    (
        "choice question without options",
        {"steps": [{"id": "a", "type": "single_choice", "question": "?"}]},
        "variants.0.content.steps.0.options",
    ),
    (
        "condition with two comparisons",
        {"steps": [_step("a", next=[{"when": {"gte": 1, "lte": 3}, "goto": "end"}])]},
        "variants.0.content.steps.0.next.0.when",
    ),
]


@pytest.mark.parametrize(
    ("content", "field"),
    [(c, f) for _, c, f in INVALID_CONTENT],
    ids=[name for name, _, _ in INVALID_CONTENT],
)
def test_invalid_survey_content_is_refused_naming_the_field(admin, make_site, content, field):
    site = make_site()
    response = admin.post(
        f"/api/v1/admin/sites/{site['id']}/campaigns",
        json={
            "name": "Bad",
            "kind": "survey",
            "variants": [{"name": "A", "content": content}],
        },
    )
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "validation_error"
    assert field in response.json["error"]["fields"], response.json["error"]["fields"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (
            {"variants": [{"name": "A", "weight": -1, "content": survey_content()}]},
            "variants.0.weight",
        ),
        ({"kind": "quiz"}, "kind"),
        ({"trigger": {"type": "scroll"}}, "trigger.percent"),
        ({"trigger": {"type": "teleport"}}, "trigger.type"),
        ({"targeting": {"devices": ["fridge"]}}, "targeting.devices.0"),
        ({"frequency": {"sampling_percent": 150}}, "frequency.sampling_percent"),
        ({"ab": {"method": "vibes"}}, "ab.method"),
        ({"ab": {"holdout_percent": 90}}, "ab.holdout_percent"),
        (
            {"targeting": {"attributes": [{"key": "tier", "op": "in"}]}},
            "targeting.attributes.0.values",
        ),
    ],
)
def test_invalid_campaign_settings_are_refused_naming_the_field(admin, make_site, fields, field):
    site = make_site()
    body = {"name": "C", "kind": "survey", **fields}
    response = admin.post(f"/api/v1/admin/sites/{site['id']}/campaigns", json=body)
    assert response.status_code == 400, response.json
    assert field in response.json["error"]["fields"], response.json["error"]["fields"]


def test_campaign_lifecycle_start_pause_complete(admin, make_site, make_campaign):
    site = make_site()
    campaign = make_campaign(site, start=False)
    assert campaign["status"] == "draft"
    base = f"/api/v1/admin/campaigns/{campaign['id']}"
    assert admin.post(f"{base}/pause").status_code == 409
    started = admin.post(f"{base}/start").json
    assert started["status"] == "running" and started["started_at"]
    assert admin.post(f"{base}/pause").json["status"] == "paused"
    assert admin.post(f"{base}/start").json["status"] == "running"
    assert admin.post(f"{base}/complete").json["status"] == "completed"
    assert admin.post(f"{base}/start").status_code == 409


def test_campaign_without_variants_cannot_start(admin, make_site):
    site = make_site()
    created = admin.post(
        f"/api/v1/admin/sites/{site['id']}/campaigns", json={"name": "Empty", "kind": "survey"}
    ).json
    response = admin.post(f"/api/v1/admin/campaigns/{created['id']}/start")
    assert response.status_code == 409
    assert response.json["error"]["code"] == "conflict"


def test_update_campaign_and_variants(admin, make_site, make_campaign):
    site = make_site()
    campaign = make_campaign(site, start=False)
    patched = admin.patch(
        f"/api/v1/admin/campaigns/{campaign['id']}",
        json={"priority": 5, "trigger": {"type": "scroll", "percent": 40}},
    )
    assert patched.status_code == 200
    assert patched.json["priority"] == 5
    assert patched.json["trigger"] == {"type": "scroll", "percent": 40}

    added = admin.post(
        f"/api/v1/admin/campaigns/{campaign['id']}/variants",
        json={"name": "B", "weight": 2, "content": survey_content()},
    )
    assert added.status_code == 201
    variant_id = added.json["id"]
    bad = admin.patch(f"/api/v1/admin/variants/{variant_id}", json={"weight": -0.5})
    assert bad.status_code == 400 and "weight" in bad.json["error"]["fields"]
    second_control = admin.patch(f"/api/v1/admin/variants/{variant_id}", json={"is_control": True})
    assert second_control.status_code == 400
    renamed = admin.patch(f"/api/v1/admin/variants/{variant_id}", json={"name": "B2"})
    assert renamed.status_code == 200, renamed.json
    assert renamed.json["name"] == "B2"
    assert [
        v["name"] for v in admin.get(f"/api/v1/admin/campaigns/{campaign['id']}").json["variants"]
    ] == ["A", "B2"]


def test_unknown_ids_answer_404_json(admin):
    for path in (
        "/api/v1/admin/sites/999",
        "/api/v1/admin/campaigns/999",
        "/api/v1/admin/variants/999",
    ):
        response = admin.get(path)
        assert response.status_code == 404
        assert response.json["error"]["code"] == "not_found"


@pytest.mark.parametrize("body", [b"not json", b"[1,2]", b"", b'{"name": 5}'])
def test_malformed_admin_bodies_answer_400(admin, body):
    response = admin.client.post(
        "/api/v1/admin/sites",
        data=body,
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "error" in response.json
