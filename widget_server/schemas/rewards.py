"""Schemas of the wheel's spin, the shop's orders webhook and the coupon pool admin API."""

from marshmallow import Schema, fields, validate

from ..vocabulary import (
    MAX_GENERATE,
    MAX_RANDOM_SYMBOLS,
    MIN_RANDOM_SYMBOLS,
    PREFIX_PATTERN,
)
from .common import VISITOR_ID, AnswerSchema, RowId
from .public import EARLIEST_EVENT, visitor_id_field


class SpinSchema(Schema):
    """What the browser may say: who spins which wheel. Any other field (a slice) is refused."""

    visitor_id = visitor_id_field
    campaign_id = RowId(required=True, strict=True)
    email = fields.Email(allow_none=True, validate=validate.Length(max=320))
    #: The visitor ticked the wheel's consent box: the e-mail is kept on the visitor too.
    email_consent = fields.Boolean(load_default=False)


class OrderSchema(Schema):
    """An order as the shop's back end reports it (signed with the site secret)."""

    order_id = fields.String(required=True, validate=validate.Length(1, 200))
    customer_id = fields.String(allow_none=True, validate=validate.Length(1, 200))
    visitor_id = fields.String(
        allow_none=True,
        validate=validate.Regexp(VISITOR_ID, error="Not a visitor id."),
    )
    total = fields.Decimal(
        required=True,
        places=2,
        allow_nan=False,
        validate=validate.Range(min=0, max=10**12 - 1),
    )
    currency = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Z]{3}\Z", error="Use an ISO 4217 code such as EUR."),
    )
    coupon_code = fields.String(allow_none=True, validate=validate.Length(1, 100))
    #: The buyer's e-mail: links a guest order to the visitor whose wheel spin gave it, when
    #: nothing else does. Not stored.
    email = fields.Email(allow_none=True, validate=validate.Length(max=320))
    #: Later than now counts as now; before 2000 is a broken clock (as for events), refused.
    created_at = fields.AwareDateTime(
        allow_none=True,
        validate=validate.Range(min=EARLIEST_EVENT, error="Earlier than 2000-01-01."),
    )


class PoolSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))


class ImportCodesSchema(Schema):
    """The JSON form of an import (the other is a ``text/csv`` body)."""

    codes = fields.List(fields.String(), required=True, validate=validate.Length(1, 50_000))


class GenerateCodesSchema(Schema):
    count = fields.Integer(required=True, strict=True, validate=validate.Range(1, MAX_GENERATE))
    prefix = fields.String(
        load_default="",
        validate=validate.Regexp(PREFIX_PATTERN, error="Up to 40 letters, digits, '_' or '-'."),
    )
    #: Random symbols per code (5 bits each): at least 12, i.e. 60 bits.
    symbols = fields.Integer(
        load_default=MIN_RANDOM_SYMBOLS,
        strict=True,
        validate=validate.Range(MIN_RANDOM_SYMBOLS, MAX_RANDOM_SYMBOLS),
    )


class SpinAnswerSchema(AnswerSchema):
    campaign_id = RowId(required=True)
    variant_id = RowId(required=True)
    slice_index = fields.Integer(required=True, validate=validate.Range(min=0))
    label = fields.String(required=True)
    code = fields.String(required=True, allow_none=True)
    repeated = fields.Boolean()
    #: When the code stops being valid (UTC, set by the server at the first spin); null: never.
    expires_at = fields.DateTime(required=True, allow_none=True)


class CouponAnswerSchema(AnswerSchema):
    """The order's coupon code: ``accepted`` when it counts as redeemed; else ``reason`` is
    ``expired`` (ordered at or after ``expires_at``) or ``not_won_by_buyer`` (a wheel's fixed
    code the buyer did not win); from a store platform's webhook also ``not_issued`` (a code
    this site never handed out: the store's own) or ``already_redeemed`` (by another order),
    which the shop's own orders call refuses instead. The order is recorded either way."""

    code = fields.String(required=True)
    accepted = fields.Boolean(required=True)
    reason = fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf(["expired", "not_won_by_buyer", "not_issued", "already_redeemed"]),
    )
    expires_at = fields.DateTime(required=True, allow_none=True)


class OrderAnswerSchema(AnswerSchema):
    order_id = fields.String(required=True)
    customer_id = fields.String(allow_none=True)
    coupon_code = fields.String(allow_none=True)
    #: A decimal written as text, e.g. "19.90".
    total = fields.String(required=True)
    currency = fields.String(required=True)
    conversions = fields.List(fields.Dict(), required=True)
    #: Null without a ``coupon_code``; else whether it redeemed (see ``CouponAnswerSchema``).
    coupon = fields.Nested(CouponAnswerSchema, required=True, allow_none=True)
