"""Input that once answered 500, or answered wrongly, found by schemathesis: regression tests."""

import pytest

from tests.helpers import event, post_public, send_events


def test_patch_with_an_empty_trigger_is_refused_not_a_500(admin, make_site, make_campaign):
    campaign = make_campaign(make_site(), start=False)
    response = admin.patch(f"/api/v1/admin/campaigns/{campaign['id']}", json={"trigger": {}})
    assert response.status_code == 400
    assert "trigger.seconds" in response.json["error"]["fields"]


def test_patch_keeps_a_nested_object_whole(admin, make_site, make_campaign):
    # A PATCH may leave out top-level fields, but a trigger it gives is a whole trigger: its
    # type defaults as on create instead of being stored without one.
    campaign = make_campaign(make_site(), start=False)
    response = admin.patch(
        f"/api/v1/admin/campaigns/{campaign['id']}", json={"trigger": {"seconds": 3}}
    )
    assert response.status_code == 200, response.json
    assert response.json["trigger"] == {"type": "delay", "seconds": 3}
    assert response.json["name"] == campaign["name"]


@pytest.mark.parametrize("campaign_id", [2**31, 2**63, 2**70])
def test_out_of_range_id_in_the_path_is_a_4xx(admin, campaign_id):
    response = admin.get(f"/api/v1/admin/campaigns/{campaign_id}")
    assert response.status_code in (400, 404)
    assert response.json["error"]["code"] in ("validation_error", "not_found")


@pytest.mark.parametrize("campaign_id", [2**31, 2**63, 2**70])
def test_out_of_range_id_in_an_event_is_a_400(client, make_site, campaign_id):
    site = make_site()
    batch = [event("impression", "visitor-0001", campaign_id, campaign_id)]
    response = send_events(client, site, batch)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "validation_error"


def test_method_not_allowed_names_the_allowed_methods(client, make_site):
    site = make_site()
    response = client.get(f"/api/v1/sites/{site['site_key']}/decide")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert response.json["error"]["code"] == "method_not_allowed"


def test_openapi_bounds_are_numbers(client):
    document = client.get("/api/v1/openapi.json").json
    total = document["components"]["schemas"]["Order"]["properties"]["total"]
    assert isinstance(total["maximum"], int | float)


def test_patching_one_site_setting_keeps_the_others(admin, make_site):
    # Site settings merge on PATCH: leaving cooldown_hours out must not reset it to its default.
    site = make_site(cooldown_hours=6)
    response = admin.patch(
        f"/api/v1/admin/sites/{site['id']}",
        json={"settings": {"stage_webhook_url": "https://shop.example/hook"}},
    )
    assert response.status_code == 200, response.json
    assert response.json["settings"]["cooldown_hours"] == 6


# Hand-crafted bodies that answered 500 before (found against a running server).
DECIDE = '{"visitor_id": "visitor-0001", "url": "https://shop.example/", "attributes": {"a": %s}}'


@pytest.mark.parametrize(
    "raw",
    ["[" * 50_000, '{"a":' * 50_000, DECIDE % "NaN", DECIDE % "Infinity", DECIDE % "-Infinity"],
    ids=["deep-array", "deep-object", "nan", "infinity", "minus-infinity"],
)
def test_body_that_is_not_json_is_a_400(client, make_site, raw):
    site = make_site()
    response = post_public(client, site, "decide", None, raw=raw)
    assert response.status_code == 400
    assert response.json["error"]["fields"] == {"_schema": ["Not valid JSON."]}


def test_deeply_nested_admin_body_is_a_400(admin):
    response = admin.client.post(
        "/api/v1/admin/sites",
        data="[" * 50_000,
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400


def test_event_from_before_2000_is_refused_naming_its_ts(client, make_site):
    site = make_site()
    old = {**event("convert", "visitor-0001", name="x"), "ts": "0001-01-01T00:00:00+14:00"}
    response = send_events(client, site, [old])
    assert response.status_code == 400
    assert "events.0.ts" in response.json["error"]["fields"]


@pytest.mark.parametrize("text", ["a\u0000b", "\ud800"], ids=["nul", "lone-surrogate"])
def test_text_the_database_cannot_store_is_never_a_500(client, make_site, text):
    # SQLite stores these; PostgreSQL refuses them: a 400, never a 500 or a "retry" 503.
    site = make_site()
    identify = post_public(
        client, site, "identify", {"visitor_id": "visitor-0001", "customer_id": text}
    )
    events = send_events(client, site, [event("convert", "visitor-0002", name=text)])
    assert identify.status_code in (200, 400)
    assert events.status_code in (202, 400)
