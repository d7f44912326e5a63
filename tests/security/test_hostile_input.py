"""Input that once answered 500, or answered wrongly, found by schemathesis: regression tests."""

import pytest

from tests.api.helpers import event, send_events


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
