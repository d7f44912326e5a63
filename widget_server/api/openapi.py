"""The OpenAPI document of the HTTP API, served at ``/api/v1/openapi.json``, built from the app.

Every URL rule under ``/api/v1/`` (and the health checks) is an operation: its path and path
parameters come from the rule, its summary and error statuses from the view's docstring (the first
paragraph; ``:raise 409: ...`` fields), its bodies from the marshmallow schemas the view names with
:func:`documented`, its security from its blueprint. A view without :func:`documented` is listed
all the same (a JSON object answered with 200), so no route goes undocumented.
"""

import inspect
import re
from dataclasses import dataclass, field

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, current_app, jsonify
from werkzeug.routing import Rule

from ..schemas.common import MAX_ID, ErrorSchema

bp = Blueprint("openapi", __name__)

#: The snippet sends its JSON as ``text/plain`` (no CORS preflight); the server parses either.
SNIPPET_BODY = ("application/json", "text/plain")
#: Blueprints whose every call needs a security scheme of the document.
SECURITY = {"admin_api": [{"admin": []}]}
_OBJECT = {"type": "object"}
_TEXT = {"type": "string"}
_ERROR = {"$ref": "#/components/schemas/Error"}
DESCRIPTION = (
    "Survey and spin-the-wheel popups with A/B tests and a loyalty funnel. The public calls under"
    " /api/v1/sites/{site_key}/ are the storefront snippet's (the orders call is the shop's back"
    " end's, signed with the site secret); the admin API under /api/v1/admin/ takes a bearer"
    " token from `funnelcake create-token`. Every error is a 4xx (or a 503 while the database is"
    ' down) with one JSON body: {"error": {"code", "message", "fields"}}.'
)


@dataclass(frozen=True)
class Operation:
    """What neither a view's URL rule nor its docstring says: bodies, query string, headers,
    the success status and the answers' schemas."""

    #: The marshmallow schema (class or instance) the view loads its body with.
    body: object = None
    body_types: tuple[str, ...] = ("application/json",)
    #: Media types of bodies the view also reads as plain text (a CSV import).
    text_bodies: tuple[str, ...] = ()
    #: The marshmallow schema the view loads its query string with.
    query: object = None
    #: Request headers the view requires, by name, with what they hold.
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    #: The schema of the success answer; without one, a JSON object.
    answer: object = None
    answer_type: str = "application/json"
    #: Schemas of the answers to ``:raise NNN:`` statuses that are not the error body.
    other_answers: dict[int, object] = field(default_factory=dict)


def documented(**operation):
    """Record for the document what the view reads and answers (see :class:`Operation`)."""

    def record(view):
        view.openapi = Operation(**operation)
        return view

    return record


def build_spec(app: Flask) -> dict:
    """The OpenAPI 3 document of ``app``'s API, as a JSON-ready dict."""
    spec = APISpec(
        title="Funnelcake",
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin(schema_name_resolver=_schema_name)],
        info={"description": DESCRIPTION},
    )
    spec.components.security_scheme("admin", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", schema=ErrorSchema)
    paths: dict[str, dict] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not _is_api(rule):
            continue
        view = app.view_functions[rule.endpoint]
        for path, parameters in _paths(rule):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                operation = _operation(view, parameters)
                if rule.endpoint.partition(".")[0] in SECURITY:
                    operation["security"] = SECURITY[rule.endpoint.partition(".")[0]]
                paths.setdefault(path, {})[method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return _ecma_patterns(_numeric_bounds(spec.to_dict()))


def _is_api(rule: Rule) -> bool:
    if rule.rule == "/api/v1/openapi.json":
        return False
    return rule.rule.startswith("/api/v1/") or rule.rule in ("/healthz", "/readyz")


_VARIABLE = re.compile(r"<(?:(\w+)(?:\(([^)]*)\))?:)?(\w+)>")


def _paths(rule: Rule) -> list[tuple[str, list[dict]]]:
    """The rule's OpenAPI paths with their path parameters; ``any(a, b)`` is one path per choice,
    as each is its own call for a client (start, pause, complete)."""
    paths = [("", [])]
    position = 0
    for match in _VARIABLE.finditer(rule.rule):
        converter, arguments, name = match.groups()
        literal = rule.rule[position : match.start()]
        position = match.end()
        if converter == "any":
            choices = [choice.strip(" '\"") for choice in arguments.split(",")]
            paths = [(p + literal + c, params) for p, params in paths for c in choices]
        else:
            parameter = _path_parameter(name, converter)
            paths = [(p + literal + "{" + name + "}", [*ps, parameter]) for p, ps in paths]
    return [(p + rule.rule[position:], params) for p, params in paths]


def _path_parameter(name: str, converter: str | None) -> dict:
    # Ids are PostgreSQL integers; a larger one is refused (400) or unknown (404), never a 500.
    if converter == "int":
        schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    else:
        schema = dict(_TEXT)
    return {"name": name, "in": "path", "required": True, "schema": schema}


_RAISE = re.compile(r"^:raise (\d{3}):\s*(.*(?:\n[ \t]+.*)*)", re.MULTILINE)


def _operation(view, parameters: list[dict]) -> dict:
    documentation = getattr(view, "openapi", Operation())
    docstring = inspect.cleandoc(view.__doc__ or "")
    summary = " ".join(docstring.split("\n\n")[0].split())
    if documentation.answer_type == "application/json":
        answer = documentation.answer or _OBJECT
    else:
        answer = _TEXT  # a CSV export
    responses = {
        str(documentation.status): {
            "description": summary,
            "content": {documentation.answer_type: {"schema": answer}},
        }
    }
    for status, text in _RAISE.findall(docstring):
        schema = documentation.other_answers.get(int(status), _ERROR)
        responses[status] = {
            "description": " ".join(text.split()),
            "content": {"application/json": {"schema": schema}},
        }
    responses["default"] = {
        "description": "Error",
        "content": {"application/json": {"schema": _ERROR}},
    }
    operation = {"summary": summary, "parameters": list(parameters), "responses": responses}
    description = _RAISE.sub("", docstring.partition("\n\n")[2]).strip()
    if description:
        operation["description"] = description
    if documentation.query is not None:
        operation["parameters"].append({"in": "query", "schema": documentation.query})
    for name, meaning in documentation.headers.items():
        header = {"name": name, "in": "header", "required": True, "description": meaning}
        operation["parameters"].append({**header, "schema": dict(_TEXT)})
    if documentation.body is not None:
        content = {media: {"schema": documentation.body} for media in documentation.body_types}
        content.update({media: {"schema": _TEXT} for media in documentation.text_bodies})
        operation["requestBody"] = {"required": True, "content": content}
    return operation


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


@bp.get("/api/v1/openapi.json")
def openapi_document():
    """Serve the OpenAPI 3 document of the API (built once per app)."""
    document = current_app.extensions.get("openapi_document")
    if document is None:
        document = current_app.extensions["openapi_document"] = build_spec(current_app)
    return jsonify(document)
