"""Admin API schemas for sites."""

from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, post_load, pre_load, validate

from ..vocabulary import (
    RESPONSE_COMPLETED,
    RESPONSE_WEBHOOK_EVENTS,
    RESPONSE_WEBHOOK_FORMATS,
    STORE_PLATFORMS,
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


class WebhookSecret(fields.String):
    """A secret pasted from a platform's admin: surrounding blanks (a careless copy) dropped,
    then 1 to 500 printable characters."""

    def _deserialize(self, value, attr, data, **kwargs):
        secret = super()._deserialize(value, attr, data, **kwargs).strip()
        if not secret:
            raise ValidationError("Empty; send null to remove the secret.")
        if len(secret) > 500:
            raise ValidationError("Longer than 500 characters.")
        if not secret.isprintable():
            raise ValidationError("Holds a control character; paste the secret alone.")
        return secret


class PlatformIntegrationSchema(Schema):
    """One store platform's settings; a PATCH changes the keys it gives and keeps the others."""

    #: What the platform signs its order webhooks with (Shopify: Settings > Notifications >
    #: Webhooks; WooCommerce: the webhook's Secret). Null removes it: deliveries are then 401.
    webhook_secret = WebhookSecret(allow_none=True)
    #: The snippet writes the visitor id into the platform's cart, and orders link to it.
    link_cart = fields.Boolean()


class IntegrationsSchema(Schema):
    """The store platforms whose order webhooks the site receives; null removes a platform."""

    shopify = fields.Nested(PlatformIntegrationSchema, allow_none=True)
    woocommerce = fields.Nested(PlatformIntegrationSchema, allow_none=True)

    @pre_load
    def _known_platforms(self, data, **kwargs):
        if isinstance(data, dict):
            unknown = {
                str(name): [f"Unknown store platform; use one of: {', '.join(STORE_PLATFORMS)}."]
                for name in data
                if name not in STORE_PLATFORMS
            }
            if unknown:
                raise ValidationError(unknown)
        return data


class SiteSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    allowed_origins = fields.List(
        fields.String(validate=_origin), load_default=list, validate=validate.Length(max=50)
    )
    settings = fields.Nested(SiteSettingsSchema, load_default=dict)
    #: Shopify's and WooCommerce's order webhooks: ``{"shopify": {"webhook_secret": "...",
    #: "link_cart": true}}``. Answers say whether a secret is set, never the secret.
    integrations = fields.Nested(IntegrationsSchema)

    @post_load
    def _normalise_origins(self, data, **kwargs):
        if "allowed_origins" in data:
            data["allowed_origins"] = [normalise_origin(o) for o in data["allowed_origins"]]
        return data


def normalise_origin(origin: str) -> str:
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}".lower()
