"""Orders from a store platform's own webhook (Shopify, WooCommerce), by configuration alone.

The owner pastes the secret the platform shows for its webhook into the site's ``integrations``;
the platform's unchanged body, checked against its own signature header, becomes the same order
dict the shop's own ``POST orders`` sends, and :func:`~.orders.record_order` stores it: the same
links, redemptions and conversions, one order path.

**Every delivery with a right signature is answered 2xx**, also when it changes nothing. Shopify
retries a delivery answered otherwise for 48 hours and then deletes the webhook subscription;
WooCommerce disables a webhook after more than five failed deliveries in a row. So the replies
that the shop's own call answers 409 or 422 are, here, 200 with a ``status`` saying what
happened:

- ``duplicate``: the order id was recorded before (Shopify's ``orders/paid`` after
  ``orders/create``, with another body; a WooCommerce ``order.updated`` after the order counted;
  the order sent by the shop's own call), or the platform's delivery id was (a retry). Nothing
  changes.
- ``ignored``: the order does not count, and nothing is stored: a Shopify test order (``test``:
  the admin's *Send test notification*, and orders of a test payment gateway), a cancelled one
  (``cancelled_at``), a WooCommerce order in a status that is not a sale yet or any more
  (``WOOCOMMERCE_COUNTED_STATUSES``: ``processing``, ``completed`` and ``on-hold`` count; an
  ``order.updated`` to one of them later records it), or another topic than an order's creation,
  payment or update sent to this address.
- ``recorded``: the order was stored. A discount code the store made itself (never handed out by
  Funnelcake) or one another order redeemed is recorded with the order, with its revenue, and
  redeems nothing (the answer's ``coupon`` says ``not_issued`` or ``already_redeemed``).

Refused, and nothing stored: an unknown site key (404), a missing or wrong signature or no secret
set for the platform (401), a body that is not the platform's order (400 naming the field).

An order may carry several discount codes (Shopify combines them; WooCommerce lists each coupon
line). It keeps one: the first that this site handed out (a pool code or a wheel's fixed code,
matched as sent or in capitals, because WooCommerce writes codes in lower case), else the first
listed. The others are not stored. A code longer than ours can be (100 characters) is never
picked.

The work is the shop's own call's, synchronous and nothing slower (Shopify gives up waiting after
5 seconds): the site, at most two reads to pick the code, the delivery's receipt, the order.

**The cart link** (``integrations.<platform>.link_cart``, off by default). The snippet writes the
visitor id into the platform's cart (Shopify: the cart attribute ``_funnelcake_visitor``, which
the order's ``note_attributes`` carry; WooCommerce: a first-party cookie the shop's checkout
copies into the order meta ``_funnelcake_visitor``), and the order links to that visitor. The
browser writes it, so a shopper can write anything there. A value that is not a visitor id is
ignored: never a 400 (a shopper could otherwise get the store's webhook deleted with one order)
and never a 500. When the option is off the value is ignored. When the platform names a customer
whom a visitor was identified as, that visitor wins: the platform vouches for its customer id,
the browser only for itself. What a forged value can do:

- attach the shopper's own order (real, paid and signed by the platform: each one costs an order)
  to another visitor: that visitor's order count, total spent and funnel stage move (so which
  campaigns target them), and the revenue counts in that visitor's A/B variants; a wheel's fixed
  code counts as that visitor's redemption when that visitor won it. It needs that visitor's id:
  about 100 random bits kept in their browser's storage, never shown to other visitors;
- with a made-up id, make one new visitor per order.

What it cannot do: create an order, change its total or codes (the platform signs the body),
redeem a pool code the shopper did not use at the platform's checkout, or read anything. Nor can
the order's e-mail do more: it links a guest order to the visitor whose wheel spin gave that
e-mail, only when nothing else links it. A refund or a cancellation after an order was recorded
is not taken back (known gap).
"""

from dataclasses import dataclass

from sqlalchemy import select

from ...errors import DuplicateOrder, NotFound, OrderIdReused, Unauthorized
from ...extensions import db
from ...models import Campaign, CouponCode, PlatformReceipt, Site, Spin, Visitor
from ...models.types import utcnow
from ...vocabulary import SHOPIFY, WOOCOMMERCE, WOOCOMMERCE_COUNTED_STATUSES
from ..platform.signatures import base64_signature_matches
from ..platform.upsert import insert_ignoring_conflicts
from .orders import OrderResult, record_order

#: Each platform's signature header and the header naming one delivery (the same on retries).
SIGNATURE_HEADERS = {SHOPIFY: "X-Shopify-Hmac-Sha256", WOOCOMMERCE: "X-WC-Webhook-Signature"}
DELIVERY_HEADERS = {SHOPIFY: "X-Shopify-Webhook-Id", WOOCOMMERCE: "X-WC-Webhook-Delivery-ID"}
TOPIC_HEADERS = {SHOPIFY: "X-Shopify-Topic", WOOCOMMERCE: "X-WC-Webhook-Topic"}
#: The topics whose body is an order; another topic sent to this address is acknowledged.
ORDER_TOPICS = {
    SHOPIFY: ("orders/create", "orders/paid", "orders/updated"),
    WOOCOMMERCE: ("order.created", "order.updated"),
}
#: Where the owner finds each platform's secret, for the 401's message.
SECRET_HINTS = {
    SHOPIFY: "Shopify admin: Settings > Notifications > Webhooks",
    WOOCOMMERCE: "WooCommerce > Settings > Advanced > Webhooks, the webhook's Secret",
}
#: Our codes' longest (``vocabulary.CODE_PATTERN``).
MAX_CODE_LENGTH = 100


@dataclass(frozen=True)
class Delivery:
    """What a platform's request says beside its body."""

    platform: str
    #: The platform's id of this delivery (None when it sends none).
    webhook_id: str | None = None
    #: ``orders/create``, ``order.updated``... (None when not sent).
    topic: str | None = None


@dataclass
class PlatformOutcome:
    """What one delivery did: ``recorded``, ``duplicate``, ``ignored`` or ``ping``."""

    platform: str
    status: str
    message: str
    reason: str | None = None
    order_id: str | None = None
    result: OrderResult | None = None

    def as_json(self) -> dict:
        body = {
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "platform": self.platform,
            "order_id": self.order_id,
        }
        if self.result is not None:
            order = self.result.order
            body.update(
                customer_id=order.customer_id,
                coupon_code=order.coupon_code,
                total=str(order.total),
                currency=order.currency,
                conversions=[c.as_json() for c in self.result.conversions],
                coupon=self.result.coupon.as_json() if self.result.coupon else None,
            )
        return body


def platform_site(site_key: str) -> Site:
    """The site with this key.

    :raise NotFound: no site has this key.
    """
    site = db.session.scalar(select(Site).where(Site.site_key == site_key))
    if site is None:
        raise NotFound("No site with this key.", {"site_key": ["Unknown site key."]})
    return site


def check_signature(site: Site, platform: str, body: bytes, signature: str | None) -> None:
    """Refuse a body not signed with the secret the site keeps for this platform.

    :raise Unauthorized: naming the platform's signature header; also when the site has no
        secret for the platform (nothing can be verified, so nothing is received).
    """
    header = SIGNATURE_HEADERS[platform]
    secret = ((site.integrations or {}).get(platform) or {}).get("webhook_secret")
    if not secret:
        raise Unauthorized(
            f"This site has no {platform} webhook secret.",
            {
                header: [
                    f"Set integrations.{platform}.webhook_secret (the admin page's Integrations,"
                    " or PATCH /api/v1/admin/sites/<id>) to the secret shown in"
                    f" {SECRET_HINTS[platform]}."
                ]
            },
        )
    if not base64_signature_matches(secret, body, signature):
        raise Unauthorized(
            f"The body is not signed with this site's {platform} webhook secret.",
            {
                header: [
                    "Expected the base64 HMAC-SHA256 of the raw body with the secret shown in"
                    f" {SECRET_HINTS[platform]}."
                ]
            },
        )


def is_woocommerce_ping(body: bytes) -> bool:
    """WooCommerce's check of a new webhook's address: ``webhook_id=<n>``, form-encoded.

    WooCommerce sends it unsigned (``WC_Webhook::deliver_ping`` adds no signature header, the
    secret may not be pasted here yet) and saves the webhook only when it is answered 200. It is
    answered 200 without a signature check because it asks for nothing: it stores nothing, reads
    nothing, and its answer says nothing about the site.
    """
    name, _, number = body.partition(b"=")
    return name == b"webhook_id" and 0 < len(number) <= 20 and number.isdigit()


def ping(platform: str) -> PlatformOutcome:
    return PlatformOutcome(platform, "ping", "Webhook address reached; nothing stored.")


def topic_outcome(delivery: Delivery) -> PlatformOutcome | None:
    """An answer for a delivery whose topic is not an order's (checked before the body, which
    is then not an order), or None to go on."""
    if delivery.topic is None or delivery.topic in ORDER_TOPICS[delivery.platform]:
        return None
    return PlatformOutcome(
        delivery.platform,
        "ignored",
        f"Topic {delivery.topic!r} is not an order's creation, payment or update; nothing stored.",
        "topic_not_counted",
    )


def receive_order(site: Site, delivery: Delivery, order: dict) -> PlatformOutcome:
    """Record a platform's order once (by its id and by the delivery's id), unless it does not
    count. ``order`` is a platform schema's load (``schemas.platforms``). Commits when it
    records; a delivery that records nothing writes nothing."""
    platform, order_id = delivery.platform, order["order_id"]
    skipped = _not_counted(platform, order)
    if skipped is not None:
        reason, message = skipped
        return PlatformOutcome(platform, "ignored", message, reason, order_id)
    if delivery.webhook_id is not None and _received(site.id, delivery):
        return _duplicate(platform, order_id, "webhook_id")
    shop_order = {
        "order_id": order_id,
        "total": order["total"],
        "currency": order["currency"],
        "created_at": order["created_at"],
        "customer_id": order["customer_id"],
        "email": order["email"],
        "coupon_code": _chosen_code(site.id, order["coupon_codes"]),
        "visitor_id": _linked_visitor(site, platform, order),
    }
    if delivery.webhook_id is not None and not _receipt(site.id, delivery, order_id):
        db.session.rollback()  # the same delivery, at the same moment: that one records
        return _duplicate(platform, order_id, "webhook_id")
    try:
        result = record_order(site.id, shop_order, strict_codes=False)
    except (DuplicateOrder, OrderIdReused):
        db.session.rollback()
        return _duplicate(platform, order_id, "order_id")
    return PlatformOutcome(platform, "recorded", "Order recorded.", None, order_id, result)


def _not_counted(platform: str, order: dict) -> tuple[str, str] | None:
    if platform == SHOPIFY:
        if order["test"]:
            return "test_order", "A test order (Shopify's test notification or gateway)."
        if order["cancelled"]:
            return "cancelled", "A cancelled order."
        return None
    if order["status"] not in WOOCOMMERCE_COUNTED_STATUSES:
        return (
            "status_not_counted",
            f"Status {order['status']!r} is not a sale (counted: "
            f"{', '.join(WOOCOMMERCE_COUNTED_STATUSES)}); an update to one of them records it.",
        )
    return None


def _duplicate(platform: str, order_id: str, reason: str) -> PlatformOutcome:
    what = "This delivery" if reason == "webhook_id" else "This order"
    return PlatformOutcome(
        platform, "duplicate", f"{what} was recorded before; nothing changed.", reason, order_id
    )


def _received(site_id: int, delivery: Delivery) -> bool:
    return (
        db.session.scalar(
            select(PlatformReceipt.id).where(
                PlatformReceipt.site_id == site_id,
                PlatformReceipt.platform == delivery.platform,
                PlatformReceipt.webhook_id == delivery.webhook_id,
            )
        )
        is not None
    )


def _receipt(site_id: int, delivery: Delivery, order_id: str) -> bool:
    """Note the delivery in the order's transaction; False when it is noted already."""
    row = {
        "site_id": site_id,
        "platform": delivery.platform,
        "webhook_id": delivery.webhook_id,
        "order_ref": order_id,
        "received_at": utcnow(),
    }
    inserted = insert_ignoring_conflicts(
        PlatformReceipt,
        [row],
        ["site_id", "platform", "webhook_id"],
        returning=[PlatformReceipt.id],
    )
    return bool(inserted)


def _chosen_code(site_id: int, codes: list[str]) -> str | None:
    """The order's one code: the first of ``codes`` this site handed out, as this site writes
    it (as sent, else in capitals), else the first that could be ours, else None. A code that
    cannot be ours (too long, a control character: text the database may not even store) is
    never picked, so the shopper's typing cannot fail the delivery."""
    candidates = [c for c in codes if len(c) <= MAX_CODE_LENGTH and c.isprintable()]
    if not candidates:
        return None
    spellings = {spelling for code in candidates for spelling in (code, code.upper())}
    ours = set(
        db.session.scalars(
            select(CouponCode.code).where(
                CouponCode.site_id == site_id, CouponCode.code.in_(spellings)
            )
        )
    )
    ours |= set(
        db.session.scalars(
            select(Spin.code)
            .join(Campaign, Campaign.id == Spin.campaign_id)
            .where(Campaign.site_id == site_id, Spin.code.in_(spellings))
            .distinct()
        )
    )
    for code in candidates:
        for spelling in (code, code.upper()):
            if spelling in ours:
                return spelling
    return candidates[0]


def _linked_visitor(site: Site, platform: str, order: dict) -> str | None:
    """The cart's visitor id, when the site links carts on this platform and the platform's
    customer is not one a visitor was identified as (then that visitor is the buyer)."""
    settings = (site.integrations or {}).get(platform) or {}
    visitor_key = order["cart_visitor"]
    if not settings.get("link_cart") or visitor_key is None:
        return None
    if order["customer_id"] is not None:
        identified = db.session.scalar(
            select(Visitor.id)
            .where(
                Visitor.site_id == site.id,
                Visitor.customer_id == order["customer_id"],
                Visitor.merged_into_id.is_(None),
            )
            .limit(1)
        )
        if identified is not None:
            return None
    return visitor_key
