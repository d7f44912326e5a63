"""The public API the snippet calls, under ``/api/v1/sites/<site_key>/``.

Bodies are parsed as JSON whatever their content type, so the snippet can send ``text/plain``
(no CORS preflight). Every failure answers the JSON error body with a 4xx; the database being
down answers 503 with ``Retry-After``.
"""

import json

from flask import Blueprint, current_app, g, jsonify, request

from ..errors import APIError, NotFound
from ..extensions import client_ip, limiter
from ..schemas.common import load_or_raise, parse_json_body
from ..schemas.public import (
    DecideAnswerSchema,
    DecideSchema,
    EventBatchAnswerSchema,
    EventBatchSchema,
    IdentifyAnswerSchema,
    IdentifySchema,
    quick_load_batch,
    quick_load_decide,
)
from ..schemas.rewards import SpinAnswerSchema, SpinSchema
from ..services.campaigns.decide import decide as decide_offers
from ..services.campaigns.site_config import get_site_config
from ..services.ingest import events as ingestion
from ..services.platform import signatures
from ..services.rewards.spin import spin as spin_wheel
from ..services.visitors.identify import identify as identify_visitor
from .cors import add_cors_headers, check_origin
from .openapi import SNIPPET_BODY, documented

bp = Blueprint("public", __name__, url_prefix="/api/v1/sites/<site_key>")

decide_schema = DecideSchema()
event_batch_schema = EventBatchSchema()
identify_schema = IdentifySchema()
spin_schema = SpinSchema()


def _public_limit() -> str:
    return current_app.config["RATELIMIT_PUBLIC"]


limiter.limit(_public_limit)(bp)


def _spin_limit() -> str:
    return current_app.config["RATELIMIT_SPIN"]


def _spin_visitor_key() -> str:
    """Rate-limit key of a spin: the site and the visitor id in the body (else the IP)."""
    try:
        visitor_id = parse_json_body(request).get("visitor_id")
    except APIError:
        visitor_id = None
    if not isinstance(visitor_id, str):
        return f"spin-ip:{client_ip()}"
    return f"spin-visitor:{g.get('site_key', '')}:{visitor_id[:64]}"


@bp.url_value_preprocessor
def load_site(endpoint, values):
    g.site_key = values.pop("site_key")
    g.site = None


@bp.before_request
def resolve_site():
    if request.method == "OPTIONS":
        g.site = _site_or_none()
        return None
    g.site = get_site_config(g.site_key)
    check_origin(g.site)
    return None


def _site_or_none():
    try:
        return get_site_config(g.site_key)
    except NotFound:
        return None


@bp.after_request
def cors(response):
    return add_cors_headers(g.get("site"), response)


@bp.route("/decide", methods=["POST", "OPTIONS"])
@documented(body=decide_schema, body_types=SNIPPET_BODY, answer=DecideAnswerSchema)
def decide():
    """Answer the campaigns this visitor is eligible for on this page, with sticky variants."""
    if request.method == "OPTIONS":
        return "", 204
    sent = parse_json_body(request)
    payload = quick_load_decide(sent) or load_or_raise(decide_schema, sent)
    result = decide_offers(g.site, payload)
    if payload["debug"]:
        body = {"visitor_id": result.visitor_key, "campaigns": [o.as_json() for o in result.offers]}
        if result.teasers:
            body["teasers"] = [o.as_json() for o in result.teasers]
        if g.site.link_cart:
            body["link_cart"] = g.site.link_cart
        body["skipped"] = [{"campaign_id": c, "reason": r} for c, r in result.skipped]
        return jsonify(body)
    # Each variant's offer was encoded once per configuration copy: joined, not re-encoded.
    offers = ",".join(o.encoded or json.dumps(o.as_json()) for o in result.offers)
    extra = ""
    if result.teasers:
        extra = ',"teasers":' + json.dumps([o.as_json() for o in result.teasers])
    if g.site.link_cart:
        extra += ',"link_cart":' + json.dumps(g.site.link_cart)
    body = f'{{"visitor_id":{json.dumps(result.visitor_key)},"campaigns":[{offers}]{extra}}}'
    return current_app.response_class(body, mimetype="application/json")


@bp.route("/events", methods=["POST", "OPTIONS"])
@documented(
    body=event_batch_schema, body_types=SNIPPET_BODY, answer=EventBatchAnswerSchema, status=202
)
def events():
    """Store a batch of events; ids already stored count as duplicates.

    :raise 413: an event is over 32 KB or the batch over 500 KB.
    """
    if request.method == "OPTIONS":
        return "", 204
    payload = parse_json_body(request)
    if isinstance(payload.get("events"), list):
        ingestion.check_event_sizes(payload["events"], len(request.get_data(cache=True)))
    events = quick_load_batch(payload)
    if events is None:
        events = load_or_raise(event_batch_schema, payload)["events"]
    result = ingestion.ingest(g.site, events)
    # Two integers: written out, not through the JSON provider (the busiest endpoint there is).
    body = f'{{"accepted":{result.accepted},"duplicates":{result.duplicates}}}'
    return current_app.response_class(body, status=202, mimetype="application/json")


@bp.route("/identify", methods=["POST", "OPTIONS"])
@documented(body=identify_schema, body_types=SNIPPET_BODY, answer=IdentifyAnswerSchema)
def identify():
    """Link the visitor to a customer (merging the customer's visitors) and store attributes.

    :raise 401: the customer id's signature is wrong, or missing where the site requires it.
    :raise 409: the visitor is already linked to another customer id.
    """
    if request.method == "OPTIONS":
        return "", 204
    payload = load_or_raise(identify_schema, parse_json_body(request))
    signatures.check_identify(g.site, payload)
    result = identify_visitor(g.site.id, payload)
    return jsonify(visitor_id=result.visitor_key, stage=result.stage)


@bp.route("/spin", methods=["POST", "OPTIONS"])
@limiter.limit(_spin_limit, override_defaults=False)
@limiter.limit(_spin_limit, key_func=_spin_visitor_key, override_defaults=False)
@documented(body=spin_schema, body_types=SNIPPET_BODY, answer=SpinAnswerSchema)
def spin():
    """Spin a wheel: the server picks the slice and the code; asking again answers the first spin.

    :raise 400: an unknown field (the browser cannot choose a slice), or a required e-mail missing.
    :raise 409: the visitor was never offered the wheel, or the e-mail already won in it.
    """
    if request.method == "OPTIONS":
        return "", 204
    payload = load_or_raise(spin_schema, parse_json_body(request))
    return jsonify(spin_wheel(g.site, payload).as_json())
