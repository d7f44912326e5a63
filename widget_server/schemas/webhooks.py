"""Admin API schemas of the outgoing webhooks: the delivery log and the signing secret."""

from marshmallow import Schema, fields, validate

from ..vocabulary import DELIVERY_STATUSES
from .common import AnswerSchema, Integer, RowId


class DeliveryQuerySchema(Schema):
    """A page of a site's delivery log: newest first, older than the delivery ``before``."""

    before = RowId()
    limit = Integer(load_default=50, validate=validate.Range(1, 200))
    status = fields.String(validate=validate.OneOf(DELIVERY_STATUSES))


class DeliverySchema(AnswerSchema):
    """One webhook delivery: a message to one URL and where its delivery stands."""

    id = fields.Integer(required=True)
    site_id = fields.Integer(required=True)
    #: The ``webhook-id`` header: the same on every attempt and on a redelivery.
    webhook_id = fields.String(required=True)
    event = fields.String(required=True)
    url = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(DELIVERY_STATUSES))
    attempts = fields.Integer(required=True)
    max_attempts = fields.Integer(required=True)
    next_attempt_at = fields.String(required=True, allow_none=True)
    last_attempt_at = fields.String(required=True, allow_none=True)
    last_error = fields.String(required=True, allow_none=True)
    created_at = fields.String(required=True)
    delivered_at = fields.String(required=True, allow_none=True)
    #: The body as sent: ``{type, timestamp, data}``, or a Slack message.
    payload = fields.Dict(required=True)


class DeliveryListSchema(AnswerSchema):
    deliveries = fields.List(fields.Nested(DeliverySchema), required=True)
    #: ``before`` for the next (older) page; null on the last page.
    next_before = fields.Integer(required=True, allow_none=True)


class WebhookSecretSchema(AnswerSchema):
    """A site's webhook signing secret after a rotation."""

    webhook_secret = fields.String(required=True)
    #: Until when deliveries also carry a signature with the previous secret.
    previous_secret_valid_until = fields.String(required=True, allow_none=True)
