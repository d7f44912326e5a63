"""The OpenAPI document lists every API route, and documents the JSON error body."""

from widget_server.api.openapi import OPERATIONS


def _documented(app) -> set[tuple[str, str]]:
    return {(method.upper(), path) for method, path, *_ in OPERATIONS}


def _routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if not (rule.rule.startswith("/api/v1/") or rule.rule in ("/healthz", "/readyz")):
            continue
        if rule.rule == "/api/v1/openapi.json" or "<any(" in rule.rule:
            continue  # any(...) rules are expanded below from their choices
        path = rule.rule
        for converter in ("<int:", "<"):
            path = path.replace(converter, "{")
        path = path.replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((method, path))
    for rule in app.url_map.iter_rules():
        if "<any(" in rule.rule and rule.rule.startswith("/api/v1/"):
            prefix, rest = rule.rule.split("<any(", 1)
            choices = rest.split(")", 1)[0].replace(" ", "").split(",")
            prefix = prefix.replace("<int:", "{").replace(">", "}")
            for choice in choices:
                routes.add(("POST", prefix + choice))
    return routes


def test_every_api_route_is_documented(app):
    missing = _routes(app) - _documented(app)
    assert not missing, f"add these routes to widget_server/api/openapi.py: {sorted(missing)}"


def test_openapi_document_is_served(client):
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.")
    decide = document["paths"]["/api/v1/sites/{site_key}/decide"]["post"]
    assert decide["requestBody"]["content"]["application/json"]["schema"]
    assert "Error" in document["components"]["schemas"]
