"""Admin API tokens: a call without a bearer token, or with a wrong one, is refused."""


def test_admin_api_refuses_missing_token(client):
    response = client.get("/api/v1/admin/sites")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert "Authorization" in response.json["error"]["fields"]


def test_admin_api_refuses_wrong_token(client, admin):
    response = client.get("/api/v1/admin/sites", headers={"Authorization": "Bearer fc_nope"})
    assert response.status_code == 401
