"""Shopify's and WooCommerce's own order webhook bodies, read into one shape.

Each platform sends its order as its REST API shows it: hundreds of fields, of which an order
needs a few. The schemas ignore the rest (``EXCLUDE``), refuse a field we read when it is not what
the platform sends (a 400 naming it: the sender is not the platform, or the platform changed), and
load every order into the same dict::

    {"order_id", "total", "currency", "created_at", "customer_id", "email", "coupon_codes",
     "cart_visitor", ...}

plus what decides whether it counts (Shopify's ``test`` and ``cancelled``, WooCommerce's
``status``), which ``services.rewards.platform_orders`` judges. ``cart_visitor`` is the visitor
id the snippet wrote into the cart, or None: the browser wrote it, so a value that is not a
visitor id (``VISITOR_ID``) is dropped here, never refused, and a malformed value can never fail
the platform's delivery.
"""

from datetime import UTC, datetime

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from ..vocabulary import CART_LINK_KEY, STORE_PLATFORMS
from .common import VISITOR_ID, AnswerSchema
from .public import EARLIEST_EVENT
from .rewards import CouponAnswerSchema

#: Platforms' ids are 64-bit integers (Shopify's pass 2**53: JSON numbers, read exactly).
MAX_PLATFORM_ID = 2**63 - 1


class PlatformId(fields.Field):
    """A platform's integer id (never a boolean, a float or a text), answered as text."""

    def __init__(self, minimum: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.minimum = minimum

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("Must be an integer id.")
        if not self.minimum <= value <= MAX_PLATFORM_ID:
            raise ValidationError(f"Must be an id from {self.minimum} to {MAX_PLATFORM_ID}.")
        return str(value) if value else None


class PlatformTime(fields.Field):
    """An ISO 8601 time, returned in UTC; from 2000 on (an earlier one is a broken clock).

    ``naive_is_utc``: a time without an offset is UTC (WooCommerce's ``date_created_gmt``);
    otherwise it is refused (Shopify always writes the shop's offset).
    """

    def __init__(self, naive_is_utc: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.naive_is_utc = naive_is_utc

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError("Must be an ISO 8601 date and time.")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError("Not an ISO 8601 date and time.") from None
        if moment.utcoffset() is None:
            if not self.naive_is_utc:
                raise ValidationError("Needs a UTC offset, e.g. 2024-06-26T12:33:21-04:00.")
            moment = moment.replace(tzinfo=UTC)
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Out of range.") from None
        if moment < EARLIEST_EVENT:
            raise ValidationError("Earlier than 2000-01-01.")
        return moment


class OptionalEmail(fields.String):
    """The buyer's e-mail as the platform has it: blank means none (a point-of-sale order), and
    so does text no address can be (longer than 320 characters, or with a control character):
    the shopper typed it, and it must not fail the order."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        return text if 0 < len(text) <= 320 and text.isprintable() else None


def _total(**kwargs):
    return fields.Decimal(
        required=True,
        places=2,
        allow_nan=False,
        validate=validate.Range(min=0, max=10**12 - 1),
        **kwargs,
    )


def _currency():
    return fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Z]{3}\Z", error="Use an ISO 4217 code such as EUR."),
    )


def _code():
    """A discount code the shopper used: any text (the store's own codes are the store's
    business); one longer than ours can be (100 characters) never redeems anything."""
    return fields.String(required=True, validate=validate.Length(min=1))


def _list_of(schema):
    """A list the platform always sends (maybe empty); null reads as empty."""
    return fields.List(fields.Nested(schema), load_default=list, allow_none=True)


def cart_visitor(value) -> str | None:
    """The visitor id the browser wrote into the cart, if it is one."""
    if isinstance(value, str) and VISITOR_ID.match(value):
        return value
    return None


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class ShopifyCustomerSchema(_Lenient):
    id = PlatformId(allow_none=True, load_default=None)


class ShopifyDiscountCodeSchema(_Lenient):
    code = _code()


class ShopifyNoteAttributeSchema(_Lenient):
    name = fields.String(required=True)
    value = fields.Raw(allow_none=True, load_default=None)


class ShopifyOrderSchema(_Lenient):
    """Shopify's ``orders/create`` (``orders/paid``, ``orders/updated``) webhook body."""

    id = PlatformId(required=True)
    total_price = _total()
    currency = _currency()
    created_at = PlatformTime(allow_none=True, load_default=None)
    #: Null for a guest checkout.
    customer = fields.Nested(ShopifyCustomerSchema, allow_none=True, load_default=None)
    email = OptionalEmail(allow_none=True, load_default=None)
    discount_codes = _list_of(ShopifyDiscountCodeSchema)
    #: The cart's attributes, ``[{"name": "_funnelcake_visitor", "value": "<visitor id>"}]``.
    note_attributes = _list_of(ShopifyNoteAttributeSchema)
    test = fields.Boolean(load_default=False)
    cancelled_at = PlatformTime(allow_none=True, load_default=None)

    @post_load
    def _as_order(self, data, **kwargs):
        linked = [a["value"] for a in data["note_attributes"] or () if a["name"] == CART_LINK_KEY]
        return {
            "order_id": data["id"],
            "total": data["total_price"],
            "currency": data["currency"],
            "created_at": data["created_at"],
            "customer_id": (data["customer"] or {}).get("id"),
            "email": data["email"],
            "coupon_codes": [d["code"] for d in data["discount_codes"] or ()],
            "cart_visitor": cart_visitor(linked[0]) if linked else None,
            "test": data["test"],
            "cancelled": data["cancelled_at"] is not None,
        }


class WooCommerceBillingSchema(_Lenient):
    email = OptionalEmail(allow_none=True, load_default=None)


class WooCommerceCouponLineSchema(_Lenient):
    code = _code()


class WooCommerceMetaSchema(_Lenient):
    key = fields.String(required=True)
    value = fields.Raw(allow_none=True, load_default=None)


class WooCommerceOrderSchema(_Lenient):
    """WooCommerce's ``order.created`` / ``order.updated`` webhook body (its REST API's order)."""

    id = PlatformId(required=True)
    status = fields.String(required=True, validate=validate.Length(1, 100))
    total = _total()
    currency = _currency()
    #: UTC without a suffix ("2017-03-22T19:28:02"); ``date_created`` is the shop's local time.
    date_created_gmt = PlatformTime(naive_is_utc=True, allow_none=True, load_default=None)
    #: 0 for a guest.
    customer_id = PlatformId(minimum=0, load_default=0)
    billing = fields.Nested(WooCommerceBillingSchema, allow_none=True, load_default=None)
    coupon_lines = _list_of(WooCommerceCouponLineSchema)
    #: The order's meta, ``[{"id": 1, "key": "_funnelcake_visitor", "value": "<visitor id>"}]``.
    meta_data = _list_of(WooCommerceMetaSchema)

    @post_load
    def _as_order(self, data, **kwargs):
        linked = [m["value"] for m in data["meta_data"] or () if m["key"] == CART_LINK_KEY]
        return {
            "order_id": data["id"],
            "total": data["total"],
            "currency": data["currency"],
            "created_at": data["date_created_gmt"],
            "customer_id": data["customer_id"],
            "email": (data["billing"] or {}).get("email"),
            "coupon_codes": [line["code"] for line in data["coupon_lines"] or ()],
            "cart_visitor": cart_visitor(linked[0]) if linked else None,
            "status": data["status"],
        }


#: What a platform's delivery did.
PLATFORM_OUTCOMES = ("recorded", "duplicate", "ignored", "ping")


class PlatformOrderAnswerSchema(AnswerSchema):
    """A platform's delivery is always answered 200 once its signature is right (see
    ``services.rewards.platform_orders``): ``status`` says what it did.

    ``recorded``: the order was stored (its fields below). ``duplicate``: it was recorded before
    (``reason``: ``order_id``, or ``webhook_id`` for the same delivery again); nothing changed.
    ``ignored``: it does not count (``reason``: ``test_order``, ``cancelled``,
    ``status_not_counted``, ``topic_not_counted``); nothing stored. ``ping``: WooCommerce's
    check of a new webhook; nothing stored.
    """

    status = fields.String(required=True, validate=validate.OneOf(PLATFORM_OUTCOMES))
    reason = fields.String(required=True, allow_none=True)
    message = fields.String(required=True)
    platform = fields.String(required=True, validate=validate.OneOf(STORE_PLATFORMS))
    order_id = fields.String(allow_none=True)
    customer_id = fields.String(allow_none=True)
    coupon_code = fields.String(allow_none=True)
    #: A decimal written as text, e.g. "19.90".
    total = fields.String()
    currency = fields.String()
    conversions = fields.List(fields.Dict())
    #: Null without a code; ``reason`` ``not_issued`` is a code of the store's own, which is
    #: recorded with the order and redeems nothing.
    coupon = fields.Nested(CouponAnswerSchema, allow_none=True)
