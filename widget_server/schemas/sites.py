"""Admin API schemas for sites."""

from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, post_load, validate

from ..vocabulary import (
    RESPONSE_COMPLETED,
    RESPONSE_WEBHOOK_EVENTS,
    RESPONSE_WEBHOOK_FORMATS,
    WEBHOOK_EVENTS,
)
from .common import WholeNested, webhook_url_field


def _origin(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValidationError("Use an origin such as https://shop.example.com (no path).")


class ResponseWebhookSchema(Schema):
    """Where survey responses are announced, which of their events, and in what body."""

    url = webhook_url_field(required=True)
    events = fields.List(
        fields.String(validate=validate.OneOf(RESPONSE_WEBHOOK_EVENTS)),
        load_default=lambda: [RESPONSE_COMPLETED],
        validate=validate.Length(min=1, error="Name at least one event."),
    )
    format = fields.String(load_default="json", validate=validate.OneOf(RESPONSE_WEBHOOK_FORMATS))

    @post_load
    def _distinct_events(self, data, **kwargs):
        data["events"] = sorted(set(data["events"]))
        return data


class SiteWebhookSchema(Schema):
    """The site's webhook: one URL that receives every event it subscribes to."""

    url = webhook_url_field(required=True)
    events = fields.List(
        fields.String(validate=validate.OneOf(WEBHOOK_EVENTS)),
        load_default=lambda: list(WEBHOOK_EVENTS),
        validate=validate.Length(min=1, error="Name at least one event."),
    )

    @post_load
    def _distinct_events(self, data, **kwargs):
        data["events"] = sorted(set(data["events"]))
        return data


class SiteSettingsSchema(Schema):
    #: No new popup for this many hours after any popup was closed or completed.
    cooldown_hours = fields.Float(load_default=0.0, validate=validate.Range(0, 24 * 365))
    #: Called (signed) when a visitor changes funnel stage.
    stage_webhook_url = webhook_url_field()
    #: ``identify`` with a customer id needs its signature (HMAC with the site secret).
    require_signed_identify = fields.Boolean(load_default=False)
    #: Called (signed) when a survey response is completed or left unfinished; null turns it off.
    response_webhook = WholeNested(ResponseWebhookSchema, allow_none=True)
    #: Called (signed) with every event it subscribes to (coupons, decisions, stages,
    #: responses); null turns it off.
    webhook = WholeNested(SiteWebhookSchema, allow_none=True)


class SiteSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    allowed_origins = fields.List(
        fields.String(validate=_origin), load_default=list, validate=validate.Length(max=50)
    )
    settings = fields.Nested(SiteSettingsSchema, load_default=dict)

    @post_load
    def _normalise_origins(self, data, **kwargs):
        if "allowed_origins" in data:
            data["allowed_origins"] = [normalise_origin(o) for o in data["allowed_origins"]]
        return data


def normalise_origin(origin: str) -> str:
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}".lower()
