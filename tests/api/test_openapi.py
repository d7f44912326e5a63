"""The OpenAPI document is built from the app: every API route is in it, with the bodies, statuses,
content types and security the views really have, and the one JSON error body."""

import re

import pytest

from widget_server.api.openapi import documented

SNIPPET_CALLS = ["decide", "events", "identify", "spin"]


@pytest.fixture
def document(client):
    return client.get("/api/v1/openapi.json").json


def _routes(app) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every API rule, read from the URL map independently of the
    document's builder; an ``any(...)`` rule is one path per choice."""
    routes = set()
    for rule in app.url_map.iter_rules():
        api = rule.rule.startswith("/api/v1/") or rule.rule in ("/healthz", "/readyz")
        if not api or rule.rule == "/api/v1/openapi.json":
            continue
        paths = [rule.rule]
        if match := re.search(r"<any\(([^)]*)\):\w+>", rule.rule):
            choices = [choice.strip() for choice in match.group(1).split(",")]
            paths = [rule.rule.replace(match.group(0), choice) for choice in choices]
        for path in paths:
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path)
            routes.update((method, path) for method in rule.methods - {"HEAD", "OPTIONS"})
    return routes


def _operations(document) -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, methods in document["paths"].items() for m in methods}


def test_every_api_route_is_in_the_document(app, document):
    routes = _routes(app)
    assert ("POST", "/api/v1/admin/campaigns/{campaign_id}/pause") in routes
    assert routes - _operations(document) == set()


def test_the_document_lists_nothing_that_is_not_a_route(app, document):
    assert _operations(document) - _routes(app) == set()


def test_a_view_registered_later_is_documented_without_being_listed_anywhere(app):
    @app.post("/api/v1/admin/sites/<int:site_id>/archive")
    @documented(status=202)
    def archive_site(site_id):
        """Archive a site.

        :raise 409: the site has running campaigns.
        """

    document = app.test_client().get("/api/v1/openapi.json").json
    operation = document["paths"]["/api/v1/admin/sites/{site_id}/archive"]["post"]
    assert operation["summary"] == "Archive a site."
    assert set(operation["responses"]) == {"202", "409", "default"}
    assert operation["parameters"][0]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 2**31 - 1,
    }


def test_request_bodies_are_the_schemas_the_views_load(document):
    decide = document["paths"]["/api/v1/sites/{site_key}/decide"]["post"]
    assert decide["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Decide"
    }
    patch = document["paths"]["/api/v1/admin/campaigns/{campaign_id}"]["patch"]
    assert patch["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CampaignUpdatePatch"
    }


@pytest.mark.parametrize("call", SNIPPET_CALLS)
def test_snippet_calls_accept_text_plain_json(document, call):
    content = document["paths"][f"/api/v1/sites/{{site_key}}/{call}"]["post"]["requestBody"]
    assert set(content["content"]) == {"application/json", "text/plain"}
    assert content["content"]["text/plain"] == content["content"]["application/json"]


def test_coupon_import_accepts_a_csv_body(document):
    body = document["paths"]["/api/v1/admin/coupon-pools/{pool_id}/import"]["post"]["requestBody"]
    assert body["content"]["text/csv"] == {"schema": {"type": "string"}}


def test_admin_calls_need_the_bearer_token_and_public_calls_do_not(document):
    assert document["components"]["securitySchemes"] == {
        "admin": {"type": "http", "scheme": "bearer"}
    }
    for path, methods in document["paths"].items():
        for operation in methods.values():
            expected = [{"admin": []}] if path.startswith("/api/v1/admin/") else None
            assert operation.get("security") == expected, path


def test_raise_fields_of_docstrings_are_documented_statuses(document):
    orders = document["paths"]["/api/v1/sites/{site_key}/orders"]["post"]["responses"]
    assert set(orders) == {"201", "401", "409", "422", "default"}
    assert orders["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    readyz = document["paths"]["/readyz"]["get"]["responses"]
    assert readyz["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Health"
    }


def test_csv_exports_answer_text_csv(document):
    for name in ("segments.csv", "responses.csv"):
        answer = document["paths"][f"/api/v1/admin/sites/{{site_id}}/{name}"]["get"]
        assert answer["responses"]["200"]["content"] == {"text/csv": {"schema": {"type": "string"}}}


def test_the_orders_webhook_documents_its_signature_header(document):
    parameters = document["paths"]["/api/v1/sites/{site_key}/orders"]["post"]["parameters"]
    header = [p for p in parameters if p["in"] == "header"]
    assert [(p["name"], p["required"]) for p in header] == [("X-Funnelcake-Signature", True)]


def test_funnel_query_parameters_are_documented(document):
    parameters = document["paths"]["/api/v1/admin/sites/{site_id}/funnel"]["get"]["parameters"]
    assert [(p["name"], p["in"]) for p in parameters] == [
        ("site_id", "path"),
        ("campaign_id", "query"),
        ("weeks", "query"),
    ]


def test_a_real_error_answer_has_the_documented_error_body(client, document):
    schemas = document["components"]["schemas"]
    body = client.post("/api/v1/sites/no-such-site/decide", data="{}").json
    assert set(body) == set(schemas["Error"]["required"]) == set(schemas["Error"]["properties"])
    detail = schemas["ErrorDetail"]
    assert set(body["error"]) == set(detail["required"]) == set(detail["properties"])
    assert schemas["Error"]["additionalProperties"] is False
    assert detail["additionalProperties"] is False


def test_answers_leave_room_for_new_fields(document):
    for name in ("DecideAnswer", "Offer", "SpinAnswer", "OrderAnswer", "Health"):
        assert "additionalProperties" not in document["components"]["schemas"][name]


def test_openapi_document_is_served(document):
    assert document["openapi"].startswith("3.")
    assert "Error" in document["components"]["schemas"]


def test_the_teaser_is_documented_in_settings_answers_and_events(document):
    schemas = document["components"]["schemas"]
    teaser = schemas["Teaser"]["properties"]
    assert teaser["side"]["enum"] == ["right", "left"]
    assert (teaser["days"]["minimum"], teaser["days"]["maximum"]) == (1, 30)
    assert "teasers" in schemas["DecideAnswer"]["properties"]
    assert "teaser" in schemas["Offer"]["properties"]
    assert {"teaser_shown", "teaser_open"} <= set(schemas["Event"]["properties"]["type"]["enum"])
