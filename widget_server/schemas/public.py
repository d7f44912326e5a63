"""Schemas of the public API the snippet calls (decide, events, identify)."""

import math
from datetime import UTC, datetime

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..models import EVENT_TYPES, TEASER_EVENT_TYPES
from ..vocabulary import STORE_PLATFORMS
from .campaigns import DEVICES
from .common import MAX_ID, SLUG, VISITOR_ID, AnswerSchema, RowId

visitor_id_field = fields.String(
    required=True,
    validate=validate.Regexp(VISITOR_ID, error="Use 8-64 letters, digits, '_' or '-' (a UUID)."),
)


def _attributes(value: dict) -> None:
    if len(value) > 50:
        raise ValidationError("At most 50 attributes.")
    for key, item in value.items():
        if not SLUG.fullmatch(key):
            raise ValidationError(f"Attribute name {key!r}: use letters, digits, '_' or '-'.")
        if not (item is None or isinstance(item, str | int | float | bool)):
            raise ValidationError(f"Attribute {key!r} must be a string, number or boolean.")
        if isinstance(item, str) and len(item) > 500:
            raise ValidationError(f"Attribute {key!r} is longer than 500 characters.")


class CartSchema(Schema):
    value = fields.Float(load_default=0.0, allow_nan=False, validate=validate.Range(min=0))
    items = fields.Integer(load_default=0, validate=validate.Range(min=0))


class DecideSchema(Schema):
    visitor_id = visitor_id_field
    url = fields.String(required=True, validate=validate.Length(1, 4096))
    referrer = fields.String(allow_none=True, validate=validate.Length(max=4096))
    page_views = fields.Integer(load_default=1, validate=validate.Range(min=0))
    device = fields.String(validate=validate.OneOf(DEVICES))
    attributes = fields.Dict(validate=_attributes)
    cart = fields.Nested(CartSchema)
    locale = fields.String(validate=validate.Length(max=35))
    debug = fields.Boolean(load_default=False)


#: What :func:`quick_load_decide` loads itself; ``attributes`` (rarely sent) go to the schema.
_DECIDE_QUICK_FIELDS = frozenset(DecideSchema._declared_fields) - {"attributes"}
_DEVICES = frozenset(DEVICES)


def quick_load_decide(payload: dict) -> dict | None:
    """A decide request shaped as the snippet sends it, loaded as :class:`DecideSchema` would
    load it; None for anything else (then the schema loads it and names what is wrong).

    Decide is called on every page view; for a visitor whose state is kept, the schema's field
    machinery was a fifth of the request. A property test holds the two equal: whatever this
    accepts, the schema loads to the same request.
    """
    if not payload.keys() <= _DECIDE_QUICK_FIELDS:
        return None
    visitor_id, url = payload.get("visitor_id"), payload.get("url")
    if not (
        type(visitor_id) is str
        and VISITOR_ID.match(visitor_id)
        and type(url) is str
        and 1 <= len(url) <= 4096
    ):
        return None
    loaded = {"visitor_id": visitor_id, "url": url, "page_views": 1, "debug": False}
    for name, value in payload.items():
        if name in ("visitor_id", "url"):
            continue
        if name == "referrer":
            ok = value is None or (type(value) is str and len(value) <= 4096)
        elif name == "page_views":
            ok = type(value) is int and value >= 0
        elif name == "device":
            ok = type(value) is str and value in _DEVICES
        elif name == "locale":
            ok = type(value) is str and len(value) <= 35
        elif name == "debug":
            ok = type(value) is bool
        else:  # cart
            value = _quick_cart(value)
            ok = value is not None
        if not ok:
            return None
        loaded[name] = value
    return loaded


def _quick_cart(cart) -> dict | None:
    if type(cart) is not dict or not cart.keys() <= {"value", "items"}:
        return None
    value, items = cart.get("value", 0.0), cart.get("items", 0)
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        return None
    if type(items) is not int or items < 0:
        return None
    return {"value": float(value), "items": items}


EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)

#: Event types that belong to a campaign variant.
CAMPAIGN_EVENTS = {"impression", "step", "answer", "complete", "close", "spin", "claim"} | set(
    TEASER_EVENT_TYPES
)


class EventSchema(Schema):
    id = fields.String(
        required=True,
        validate=validate.Regexp(VISITOR_ID, error="Use a UUID."),
    )
    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    visitor_id = visitor_id_field
    campaign_id = RowId(strict=True, allow_none=True)
    variant_id = RowId(strict=True, allow_none=True)
    #: When it happened: later than now counts as now; before 2000 is a broken clock, refused.
    ts = fields.AwareDateTime(
        allow_none=True,
        default_timezone=None,
        validate=validate.Range(min=EARLIEST_EVENT, error="Earlier than 2000-01-01."),
    )
    data = fields.Dict(load_default=dict)

    @validates_schema
    def shape_by_type(self, event, **kwargs):
        refusal = shape_refusal(event)
        if refusal:
            raise ValidationError(*refusal)


def shape_refusal(event: dict) -> tuple[str | dict, str] | None:
    """What an event of its type lacks, as ``(message, field)``; None when it has it all."""
    kind = event["type"]
    data = event.get("data") or {}
    if kind in CAMPAIGN_EVENTS:
        for name in ("campaign_id", "variant_id"):
            if event.get(name) is None:
                return f"A {kind} event needs {name}.", name
    if kind in ("answer", "step"):
        step_id = data.get("step_id")
        if not isinstance(step_id, str) or not SLUG.fullmatch(step_id):
            return {"step_id": ["Missing or not a step id."]}, "data"
    if kind == "answer":
        if "value" not in data:
            return {"value": ["Missing."]}, "data"
        if not _answer_value_ok(data["value"]):
            return {"value": ["Must be a string, a number or a list of option ids."]}, "data"
    if kind in ("answer", "complete") and "hidden" in data and not _hidden_ok(data["hidden"]):
        message = "At most 10 fields, each a step-id-like name and a text of up to 200 characters."
        return {"hidden": [message]}, "data"
    if kind == "convert" and not isinstance(data.get("name"), str):
        return {"name": ["A convert event needs the goal's name."]}, "data"
    return None


def _hidden_ok(hidden) -> bool:
    """The hidden fields' values a popup sends with its answers (``{name: text}``)."""
    return (
        isinstance(hidden, dict)
        and len(hidden) <= 10
        and all(
            isinstance(k, str) and SLUG.fullmatch(k) and isinstance(v, str) and len(v) <= 200
            for k, v in hidden.items()
        )
    )


def _answer_value_ok(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value == value and abs(value) < 1e9
    if isinstance(value, str):
        return len(value) <= 5000
    if isinstance(value, list):
        return len(value) <= 20 and all(isinstance(v, str) and len(v) <= 64 for v in value)
    return False


class EventBatchSchema(Schema):
    events = fields.List(
        fields.Nested(EventSchema), required=True, validate=validate.Length(1, 100)
    )


MAX_BATCH = 100
_EVENT_FIELDS = frozenset(EventSchema._declared_fields)
_EVENT_TYPES = frozenset(EVENT_TYPES)


def quick_load_batch(payload: dict) -> list[dict] | None:
    """The events of a batch shaped as the snippet sends it, loaded as :class:`EventBatchSchema`
    would load them; None for anything else (then the schema loads it and names what is wrong).

    The events endpoint is the busiest there is, and the schema's field machinery cost a fifth of
    each request. This checks the common, valid shape with plain comparisons; the schema stays
    the contract (and the OpenAPI document), and a property test holds the two equal: whatever
    this accepts, the schema loads to the same events.
    """
    events = payload.get("events")
    if len(payload) != 1 or type(events) is not list or not 1 <= len(events) <= MAX_BATCH:
        return None
    loaded = []
    for raw in events:
        if type(raw) is not dict or not raw.keys() <= _EVENT_FIELDS:
            return None
        event_id, kind, visitor_id = raw.get("id"), raw.get("type"), raw.get("visitor_id")
        if not (
            type(event_id) is str
            and VISITOR_ID.match(event_id)
            and type(kind) is str
            and kind in _EVENT_TYPES
            and type(visitor_id) is str
            and VISITOR_ID.match(visitor_id)
            and _row_id_or_none(raw.get("campaign_id"))
            and _row_id_or_none(raw.get("variant_id"))
        ):
            return None
        event = dict(raw)
        data = raw.get("data", _MISSING)
        if data is _MISSING:
            event["data"] = {}
        elif type(data) is not dict:
            return None
        if "ts" in raw and raw["ts"] is not None:
            ts = _aware_time(raw["ts"])
            if ts is None:
                return None
            event["ts"] = ts
        if shape_refusal(event):
            return None
        loaded.append(event)
    return loaded


_MISSING = object()


def _row_id_or_none(value) -> bool:
    return value is None or (type(value) is int and 1 <= value <= MAX_ID)


def _aware_time(text) -> datetime | None:
    if type(text) is not str:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.utcoffset() is None or moment < EARLIEST_EVENT:
        return None
    return moment


class IdentifySchema(Schema):
    """``null`` for an optional field means "not given" (the snippet may send it so)."""

    visitor_id = visitor_id_field
    customer_id = fields.String(allow_none=True, validate=validate.Length(1, 200))
    #: ``sha256=<hex HMAC of customer_id with the site secret>``, made by the shop's server;
    #: required when the site's ``require_signed_identify`` setting is on.
    customer_signature = fields.String(allow_none=True, validate=validate.Length(max=200))
    #: Stored only with ``email_consent: true``.
    email = fields.Email(allow_none=True, validate=validate.Length(max=320))
    #: ``true`` stores ``email``; ``false`` withdraws consent (the stored e-mail is erased);
    #: not given (or null) changes nothing.
    email_consent = fields.Boolean(allow_none=True)
    #: Merged into the visitor's attributes; an attribute sent as null is removed.
    attributes = fields.Dict(allow_none=True, validate=_attributes)


class OfferSchema(AnswerSchema):
    """A campaign the visitor may see now, with the variant it is assigned to."""

    campaign_id = RowId(required=True)
    variant_id = RowId(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("survey", "wheel")))
    priority = fields.Integer()
    trigger = fields.Dict(required=True)
    content = fields.Dict(required=True)
    #: A survey's reward wheel: ``{campaign_id, variant_id, kind, label, content}``.
    reward = fields.Dict()
    #: The campaign's tab after a close: ``{text, side, days}`` (``frequency.teaser``).
    teaser = fields.Dict()


class SkippedSchema(AnswerSchema):
    """Why a campaign was not offered (``debug: true``)."""

    campaign_id = RowId(required=True)
    reason = fields.String(required=True)


class DecideAnswerSchema(AnswerSchema):
    visitor_id = fields.String(required=True)
    campaigns = fields.List(fields.Nested(OfferSchema), required=True)
    #: Campaigns closed within their teaser's window: draw only the tab (at most one).
    teasers = fields.List(fields.Nested(OfferSchema))
    skipped = fields.List(fields.Nested(SkippedSchema))
    #: The site links carts to visitors on this store platform: the snippet writes the visitor
    #: id into the cart (Shopify: the cart attribute ``_funnelcake_visitor``; WooCommerce: the
    #: first-party cookie ``funnelcake_visitor``, which the shop copies into the order's meta).
    #: Absent when the site's ``integrations.<platform>.link_cart`` is off.
    link_cart = fields.String(validate=validate.OneOf(STORE_PLATFORMS))


class EventBatchAnswerSchema(AnswerSchema):
    accepted = fields.Integer(required=True, validate=validate.Range(min=0))
    duplicates = fields.Integer(required=True, validate=validate.Range(min=0))


class IdentifyAnswerSchema(AnswerSchema):
    visitor_id = fields.String(required=True)
    stage = fields.String(required=True, allow_none=True)
