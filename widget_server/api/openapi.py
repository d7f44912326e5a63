"""The OpenAPI document of the HTTP API, served at ``/api/v1/openapi.json``.

Request bodies come from the marshmallow schemas the views validate with, so the document cannot
drift from the validation; ``tests/api/test_openapi.py`` fails when a route is not listed here.
"""

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, jsonify

from ..schemas.campaigns import (
    CampaignSchema,
    CampaignUpdateSchema,
    PromoteSchema,
    VariantSchema,
)
from ..schemas.common import patch_schema
from ..schemas.funnel import StagesSchema
from ..schemas.public import DecideSchema, EventBatchSchema, IdentifySchema
from ..schemas.rewards import (
    GenerateCodesSchema,
    ImportCodesSchema,
    OrderSchema,
    PoolSchema,
    SpinSchema,
)
from ..schemas.sites import SiteSchema

bp = Blueprint("openapi", __name__)

ERROR_BODY = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}
JSON_OBJECT = {"type": "object"}
_ID = {"type": "integer", "minimum": 1}
_STATUS = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}

#: Answers of the calls other programs parse (the snippet's, the shop's, a load balancer's);
#: the admin API's answers are documented as objects. Checked by schemathesis in tests/security.
RESPONSES: dict[tuple[str, str], dict] = {
    ("post", "/api/v1/sites/{site_key}/decide"): {
        "type": "object",
        "required": ["visitor_id", "campaigns"],
        "properties": {
            "visitor_id": {"type": "string"},
            "campaigns": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["campaign_id", "variant_id", "kind", "trigger", "content"],
                    "properties": {
                        "campaign_id": _ID,
                        "variant_id": _ID,
                        "kind": {"type": "string", "enum": ["survey", "wheel"]},
                        "priority": {"type": "integer"},
                        "trigger": {"type": "object"},
                        "content": {"type": "object"},
                    },
                },
            },
            "skipped": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["campaign_id", "reason"],
                    "properties": {"campaign_id": _ID, "reason": {"type": "string"}},
                },
            },
        },
    },
    ("post", "/api/v1/sites/{site_key}/events"): {
        "type": "object",
        "required": ["accepted", "duplicates"],
        "properties": {
            "accepted": {"type": "integer", "minimum": 0},
            "duplicates": {"type": "integer", "minimum": 0},
        },
    },
    ("post", "/api/v1/sites/{site_key}/identify"): {
        "type": "object",
        "required": ["visitor_id", "stage"],
        "properties": {
            "visitor_id": {"type": "string"},
            "stage": {"type": "string", "nullable": True},
        },
    },
    ("post", "/api/v1/sites/{site_key}/spin"): {
        "type": "object",
        "required": ["campaign_id", "variant_id", "slice_index", "label", "code"],
        "properties": {
            "campaign_id": _ID,
            "variant_id": _ID,
            "slice_index": {"type": "integer", "minimum": 0},
            "label": {"type": "string"},
            "code": {"type": "string", "nullable": True},
            "repeated": {"type": "boolean"},
        },
    },
    ("post", "/api/v1/sites/{site_key}/orders"): {
        "type": "object",
        "required": ["order_id", "total", "currency", "conversions"],
        "properties": {
            "order_id": {"type": "string"},
            "customer_id": {"type": "string", "nullable": True},
            "coupon_code": {"type": "string", "nullable": True},
            "total": {"type": "string"},
            "currency": {"type": "string"},
            "conversions": {"type": "array", "items": {"type": "object"}},
        },
    },
    ("get", "/healthz"): _STATUS,
    ("get", "/readyz"): _STATUS,
}
#: Calls that answer something other than JSON.
CSV = {"text/csv": {"schema": {"type": "string"}}}
RESPONSE_CONTENT = {
    ("get", "/api/v1/admin/sites/{site_id}/segments.csv"): CSV,
    ("get", "/api/v1/admin/sites/{site_id}/responses.csv"): CSV,
}
#: Answers besides the success and the error body.
EXTRA_RESPONSES = {
    ("get", "/readyz"): {
        "503": {
            "description": "The database is not reachable",
            "content": {"application/json": {"schema": _STATUS}},
        }
    }
}

#: (method, path, request schema or None, success status, summary, security)
OPERATIONS: list[tuple[str, str, object, str, str, str | None]] = [
    (
        "post",
        "/api/v1/sites/{site_key}/decide",
        DecideSchema,
        "200",
        "Campaigns this visitor may see now, with sticky variants",
        None,
    ),
    (
        "post",
        "/api/v1/sites/{site_key}/events",
        EventBatchSchema,
        "202",
        "Store a batch of events (idempotent by event id)",
        None,
    ),
    ("get", "/api/v1/admin/sites", None, "200", "List sites", "admin"),
    ("post", "/api/v1/admin/sites", SiteSchema, "201", "Create a site", "admin"),
    ("get", "/api/v1/admin/sites/{site_id}", None, "200", "Show a site", "admin"),
    (
        "patch",
        "/api/v1/admin/sites/{site_id}",
        SiteSchema(partial=True),
        "200",
        "Change a site",
        "admin",
    ),
    ("get", "/api/v1/admin/sites/{site_id}/campaigns", None, "200", "List campaigns", "admin"),
    (
        "post",
        "/api/v1/admin/sites/{site_id}/campaigns",
        CampaignSchema,
        "201",
        "Create a campaign",
        "admin",
    ),
    ("get", "/api/v1/admin/campaigns/{campaign_id}", None, "200", "Show a campaign", "admin"),
    (
        "patch",
        "/api/v1/admin/campaigns/{campaign_id}",
        patch_schema(CampaignUpdateSchema),
        "200",
        "Change a campaign",
        "admin",
    ),
    ("post", "/api/v1/admin/campaigns/{campaign_id}/start", None, "200", "Start", "admin"),
    ("post", "/api/v1/admin/campaigns/{campaign_id}/pause", None, "200", "Pause", "admin"),
    ("post", "/api/v1/admin/campaigns/{campaign_id}/complete", None, "200", "Complete", "admin"),
    (
        "post",
        "/api/v1/admin/campaigns/{campaign_id}/variants",
        VariantSchema,
        "201",
        "Add a variant",
        "admin",
    ),
    (
        "get",
        "/api/v1/admin/campaigns/{campaign_id}/results",
        None,
        "200",
        "Results per variant, SRM check and the current decision",
        "admin",
    ),
    (
        "post",
        "/api/v1/admin/campaigns/{campaign_id}/promote",
        PromoteSchema,
        "201",
        "Promote a variant by hand",
        "admin",
    ),
    (
        "post",
        "/api/v1/admin/campaigns/{campaign_id}/undo",
        None,
        "201",
        "Undo the latest promotion or stop",
        "admin",
    ),
    (
        "get",
        "/api/v1/admin/campaigns/{campaign_id}/decisions",
        None,
        "200",
        "The decision log",
        "admin",
    ),
    ("get", "/api/v1/admin/variants/{variant_id}", None, "200", "Show a variant", "admin"),
    (
        "patch",
        "/api/v1/admin/variants/{variant_id}",
        VariantSchema(partial=True),
        "200",
        "Change a variant",
        "admin",
    ),
    (
        "post",
        "/api/v1/sites/{site_key}/identify",
        IdentifySchema,
        "200",
        "Link the visitor to a customer, merge the customer's visitors, set attributes",
        None,
    ),
    (
        "get",
        "/api/v1/admin/sites/{site_id}/funnel/stages",
        None,
        "200",
        "The site's funnel stages and entry rules",
        "admin",
    ),
    (
        "put",
        "/api/v1/admin/sites/{site_id}/funnel/stages",
        StagesSchema,
        "200",
        "Replace the funnel stages; visitors are restaged",
        "admin",
    ),
    (
        "get",
        "/api/v1/admin/sites/{site_id}/funnel",
        None,
        "200",
        "Visitors per stage, weekly conversion, repeat-customer figures, CSAT, NPS",
        "admin",
    ),
    (
        "get",
        "/api/v1/admin/sites/{site_id}/visitors/{visitor_key}/funnel",
        None,
        "200",
        "One visitor's stage, scores, orders, attributes and complete stage history",
        "admin",
    ),
    (
        "get",
        "/api/v1/admin/sites/{site_id}/segments.csv",
        None,
        "200",
        "CSV of visitors with stage, scores, orders and attributes (streamed)",
        "admin",
    ),
    (
        "get",
        "/api/v1/admin/sites/{site_id}/responses.csv",
        None,
        "200",
        "CSV of survey responses (filters: campaign_id, variant_id, stage, date_from, date_to)",
        "admin",
    ),
    (
        "post",
        "/api/v1/sites/{site_key}/spin",
        SpinSchema,
        "200",
        "Spin a wheel: the server picks the slice and the code (once per visitor)",
        None,
    ),
    (
        "post",
        "/api/v1/sites/{site_key}/orders",
        OrderSchema,
        "201",
        "Report an order (signed: X-Funnelcake-Signature); once per order_id (a replay is a 409)",
        None,
    ),
    (
        "get",
        "/api/v1/admin/sites/{site_id}/coupon-pools",
        None,
        "200",
        "Coupon pools with stock",
        "admin",
    ),
    (
        "post",
        "/api/v1/admin/sites/{site_id}/coupon-pools",
        PoolSchema,
        "201",
        "Create a coupon pool",
        "admin",
    ),
    ("get", "/api/v1/admin/coupon-pools/{pool_id}", None, "200", "A pool and its stock", "admin"),
    (
        "post",
        "/api/v1/admin/coupon-pools/{pool_id}/import",
        ImportCodesSchema,
        "201",
        "Import codes (JSON list, or a text/csv body)",
        "admin",
    ),
    (
        "post",
        "/api/v1/admin/coupon-pools/{pool_id}/generate",
        GenerateCodesSchema,
        "201",
        "Generate random codes (at least 60 bits each)",
        "admin",
    ),
    ("get", "/healthz", None, "200", "The process is up", None),
    ("get", "/readyz", None, "200", "The database is reachable", None),
]


def build_spec() -> dict:
    spec = APISpec(
        title="Funnelcake",
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin(schema_name_resolver=_schema_name)],
        info={"description": "Survey and spin-the-wheel popups with A/B tests (SPEC §4)."},
    )
    spec.components.security_scheme("admin", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", ERROR_BODY)
    paths: dict[str, dict] = {}
    for method, path, schema, status, summary, security in OPERATIONS:
        operation = {
            "summary": summary,
            "parameters": [_path_parameter(name) for name in _path_names(path)],
            "responses": {
                status: {
                    "description": summary,
                    "content": RESPONSE_CONTENT.get(
                        (method, path),
                        {
                            "application/json": {
                                "schema": RESPONSES.get((method, path), JSON_OBJECT)
                            }
                        },
                    ),
                },
                **EXTRA_RESPONSES.get((method, path), {}),
                "default": {
                    "description": "Error",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        }
        if schema is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
        if security:
            operation["security"] = [{security: []}]
        paths.setdefault(path, {})[method] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return _ecma_patterns(_numeric_bounds(spec.to_dict()))


_BOUNDS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}


def _numeric_bounds(node):
    """JSON Schema bounds are numbers; apispec leaves a Decimal field's (order total) a Decimal,
    which JSON would write as a string."""
    if isinstance(node, dict):
        return {
            key: float(value)
            if key in _BOUNDS and not isinstance(value, int | float)
            else _numeric_bounds(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_numeric_bounds(item) for item in node]
    return node


def _ecma_patterns(node):
    """The schemas' patterns end with Python's ``\\Z`` (its ``$`` also matches before a final
    newline); JSON Schema patterns are ECMA-262, where ``$`` is the end and ``\\Z`` is no anchor."""
    if isinstance(node, dict):
        return {
            key: value.removesuffix("\\Z") + "$"
            if key == "pattern" and isinstance(value, str) and value.endswith("\\Z")
            else _ecma_patterns(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_ecma_patterns(item) for item in node]
    return node


def _schema_name(schema) -> str:
    """``SiteSchema`` -> ``Site``; a partial (PATCH) instance -> ``SitePatch``."""
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__.removesuffix("Schema")
    return name + "Patch" if getattr(schema, "partial", False) else name


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _path_parameter(name: str) -> dict:
    # Ids are PostgreSQL integers; a larger one is refused (400) or unknown (404), never a 500.
    if name in ("site_key", "visitor_key"):
        return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
    schema = {**_ID, "maximum": 2**31 - 1}
    return {"name": name, "in": "path", "required": True, "schema": schema}


_cached: dict | None = None


@bp.get("/api/v1/openapi.json")
def openapi_document():
    """Serve the OpenAPI 3 document of the API."""
    global _cached
    if _cached is None:
        _cached = build_spec()
    return jsonify(_cached)
