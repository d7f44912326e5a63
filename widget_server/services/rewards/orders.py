"""Orders reported by the shop's back end: signed, idempotent by order id, closing the loop.

An order links to a visitor (by ``visitor_id``, else the visitor identified with its
``customer_id``, else the visitor who won its coupon, else the visitor whose wheel spin gave its
``email``), redeems its coupon code, and feeds the
funnel (order count, total spent, stage) and the A/B metrics: ``coupon_redemption`` for the
campaign and variant whose wheel handed the code out, ``revenue`` for every campaign the visitor
is in. The same order id again with the same body is a harmless replay; with another body it is
a conflict.

A code won with an expiry (a wheel slice's ``expires_in_minutes``) redeems nothing when the order
was made at or after it: the order is still recorded, with its revenue, but the code stays
unredeemed and no ``coupon_redemption`` counts; the answer's ``coupon`` says so.

An order that redeems a code announces it (``coupon.redeemed``) to the site's webhook when that
subscribes to it, in the order's transaction.

The shop's own call refuses an order whose code this site never handed out (422) or another order
redeemed (409): its developer can fix the call. A store platform's webhook cannot be refused for
a code (the shopper used the store's own discount; the platform would retry, then give up on the
subscription), so :func:`record_order` with ``strict_codes=False`` records such an order with its
revenue and the code redeems nothing (``not_issued``, ``already_redeemed``).
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from ...errors import Conflict, DuplicateOrder, NotFound, OrderIdReused, Unauthorized, Unprocessable
from ...extensions import db
from ...models import Assignment, Campaign, CouponCode, Order, Site, Spin, Visitor
from ...models.types import utcnow
from ...vocabulary import COUPON_REDEEMED
from .. import funnel
from ..platform import webhooks
from ..platform.signatures import signature_matches
from ..promotion import metrics
from ..visitors.records import get_or_create_visitor, ids_standing_for
from .spin import iso_utc, normalised_email

SIGNATURE_HEADER = "X-Funnelcake-Signature"


@dataclass(frozen=True)
class Conversion:
    """One A/B conversion an order produced: ``coupon_redemption`` or ``revenue``."""

    metric: str
    campaign_id: int
    variant_id: int

    def as_json(self) -> dict:
        return {
            "metric": self.metric,
            "campaign_id": self.campaign_id,
            "variant_id": self.variant_id,
        }


@dataclass(frozen=True)
class CouponVerdict:
    """Whether the order's coupon code counts as redeemed, and if not, why.

    ``reason``: ``expired`` (the order was made at or after the expiry the spin set),
    ``not_won_by_buyer`` (a wheel's fixed code the buyer did not win on the wheel); and, for
    orders recorded with ``strict_codes=False`` only, ``not_issued`` (a code this site never
    handed out: the store's own) and ``already_redeemed`` (redeemed by another order).
    """

    code: str
    accepted: bool
    reason: str | None = None
    expires_at: datetime | None = None

    def as_json(self) -> dict:
        return {
            "code": self.code,
            "accepted": self.accepted,
            "reason": self.reason,
            "expires_at": iso_utc(self.expires_at),
        }


@dataclass
class OrderResult:
    order: Order
    conversions: list[Conversion] = field(default_factory=list)
    #: None when the order named no coupon code.
    coupon: CouponVerdict | None = None


def signed_site(site_key: str, body: bytes, signature: str | None) -> Site:
    """The site whose secret signed ``body``.

    :raise NotFound: no site has this key.
    :raise Unauthorized: the signature header is missing or does not match.
    """
    site = db.session.scalar(select(Site).where(Site.site_key == site_key))
    if site is None:
        raise NotFound("No site with this key.", {"site_key": ["Unknown site key."]})
    if not signature_matches(site.secret, body, signature):
        raise Unauthorized(
            "The order is not signed with this site's secret.",
            {
                SIGNATURE_HEADER: [
                    "Send 'sha256=<hex HMAC-SHA256 of the raw body with the site secret>'."
                ]
            },
        )
    return site


def payload_digest(order: dict) -> str:
    """SHA-256 of the validated order, so replays compare by content, not by formatting
    (``"total": 12.5`` and ``"12.50"`` are the same; a field sent as null is a field not sent)."""
    given = {name: value for name, value in order.items() if value is not None}
    canonical = json.dumps(given, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_order(site_id: int, order: dict, strict_codes: bool = True) -> OrderResult:
    """Store a validated order once; link, redeem and count it. Commits.

    ``strict_codes=False`` (a store platform's webhook) records an order whose code this site
    never handed out, or another order redeemed, instead of refusing it: the code redeems
    nothing and the verdict says why.

    :raise DuplicateOrder: this order was stored before (a replay); nothing changes.
    :raise OrderIdReused: the order id was stored with another body.
    :raise Conflict: the coupon code was redeemed by another order (``strict_codes`` only).
    :raise Unprocessable: the coupon code is not one this site handed out (``strict_codes``
        only).
    """
    digest = payload_digest(order)
    stored = _stored(site_id, order["order_id"])
    if stored is not None:
        return _replay(stored, digest)
    code = order.get("coupon_code")
    coupon, refusal = _coupon(site_id, code, strict_codes)
    visitor = _visitor(site_id, order, coupon)
    fixed_code_spin = None
    if coupon is None and code and refusal is None and visitor is not None:
        fixed_code_spin = _fixed_code_spin_of(site_id, code, visitor.id)
    now = utcnow()
    ordered_at = min(order.get("created_at") or now, now)
    if refusal is not None:
        verdict = CouponVerdict(code, False, refusal)
    else:
        verdict = _verdict(code, coupon, fixed_code_spin, ordered_at)
    if verdict is not None and not verdict.accepted:
        coupon = fixed_code_spin = None  # recorded with the order's text, redeeming nothing
    order_pk = _insert(site_id, order, visitor, coupon, digest, ordered_at, now)
    if order_pk is None:  # the same order id arrived at the same moment: that one won
        db.session.rollback()
        return _replay(_stored(site_id, order["order_id"]), digest)
    if coupon is not None and not _redeem(coupon, now):
        # Another order redeemed the code between our read and our write.
        if strict_codes:
            raise _already_redeemed(coupon.code)
        _unlink_coupon(order_pk)
        coupon, verdict = None, CouponVerdict(code, False, "already_redeemed")
    stored = db.session.get(Order, order_pk)
    conversions = after_order_recorded(stored, visitor, coupon, fixed_code_spin)
    _announce_redemption(site_id, stored, visitor, coupon or fixed_code_spin, now)
    db.session.commit()
    return OrderResult(stored, conversions=conversions, coupon=verdict)


def _announce_redemption(
    site_id: int,
    order: Order,
    visitor: Visitor | None,
    handed_out: CouponCode | Spin | None,
    now: datetime,
) -> None:
    """Record the ``coupon.redeemed`` webhook of an order that redeemed a code (a pool's, or
    the buyer's own fixed code), when the site's webhook subscribes to it. The site row is the
    one the signature check loaded (no query)."""
    if handed_out is None:
        return
    site = db.session.get(Site, site_id)
    urls = webhooks.subscribed_urls(site.settings, COUPON_REDEEMED)
    if not urls:
        return
    redeemed = {
        "site_id": site_id,
        "code": order.coupon_code,
        "order_id": order.order_ref,
        "customer_id": order.customer_id,
        "visitor_id": visitor.visitor_key if visitor is not None else None,
        "campaign_id": handed_out.campaign_id,
        "variant_id": handed_out.variant_id,
        "total": str(order.total),
        "currency": order.currency,
        "ordered_at": iso_utc(order.ordered_at),
    }
    webhooks.enqueue(site_id, urls, COUPON_REDEEMED, [(redeemed, now)])


def _verdict(
    code: str | None, coupon: CouponCode | None, fixed_code_spin: Spin | None, ordered_at
) -> CouponVerdict | None:
    """Whether the order's code redeems: a pool code, or the fixed code of the buyer's own spin,
    ordered before the expiry its spin set (the server's clock, never the browser's)."""
    if code is None:
        return None
    if coupon is None and fixed_code_spin is None:
        return CouponVerdict(code, False, "not_won_by_buyer")
    expires_at = (coupon or fixed_code_spin).expires_at
    if expires_at is not None and ordered_at >= expires_at:
        return CouponVerdict(code, False, "expired", expires_at)
    return CouponVerdict(code, True, None, expires_at)


def after_order_recorded(
    order: Order, visitor: Visitor | None, coupon: CouponCode | None, fixed_code_spin: Spin | None
) -> list[Conversion]:
    """What a new order changes beyond itself, in the same transaction.

    The funnel refreshes the visitor's ``order_count`` / ``total_spent`` and stage
    (``funnel.on_order``); the metric rollups gain revenue in each of the visitor's campaigns
    (``metrics.record_order``) and ``coupon_redemption`` in the campaign whose wheel handed out
    the code: a pool code, or the fixed code of the buyer's own spin. Returns the conversions
    produced, for callers that report them. Hook further order effects in here.
    """
    if visitor is None:
        return []
    funnel.on_order(visitor)
    metrics.record_order(visitor.id, float(order.total), order.ordered_at)
    conversions = [
        Conversion("revenue", campaign_id, variant_id)
        for campaign_id, variant_id in db.session.execute(
            select(Assignment.campaign_id, Assignment.variant_id)
            .where(Assignment.visitor_id == visitor.id, Assignment.variant_id.is_not(None))
            .order_by(Assignment.campaign_id)
        )
    ]
    if coupon is not None and coupon.campaign_id and coupon.variant_id:
        handed_out = (coupon.campaign_id, coupon.variant_id, coupon.visitor_id)
    elif fixed_code_spin is not None:
        handed_out = (
            fixed_code_spin.campaign_id,
            fixed_code_spin.variant_id,
            fixed_code_spin.visitor_id,
        )
    else:
        return conversions
    campaign_id, variant_id, winner_id = handed_out
    owner_id = _assigned_owner(campaign_id, winner_id) if winner_id else visitor.id
    metrics.record_conversion(campaign_id, owner_id, "coupon_redemption", order.ordered_at)
    conversions.insert(0, Conversion("coupon_redemption", campaign_id, variant_id))
    return conversions


def _assigned_owner(campaign_id: int, winner_id: int) -> int:
    """Whose assignment the redemption counts under: the visitor who won the code, or, when
    identify merged them away (their assignment moved), the visitor they were merged into."""
    has_assignment = select(Assignment.id).where(
        Assignment.campaign_id == campaign_id, Assignment.visitor_id == winner_id
    )
    if db.session.scalar(has_assignment) is not None:
        return winner_id
    survivor_id = db.session.scalar(select(Visitor.merged_into_id).where(Visitor.id == winner_id))
    return survivor_id or winner_id


def _stored(site_id: int, order_ref: str) -> Order | None:
    return db.session.scalar(
        select(Order).where(Order.site_id == site_id, Order.order_ref == order_ref)
    )


def _replay(stored: Order, digest: str) -> OrderResult:
    """Refuse a second delivery of a stored order: 409 either way, so nothing is counted twice."""
    if stored.payload_sha256 != digest:
        raise OrderIdReused(
            f"Order {stored.order_ref!r} was already received with different content.",
            {"order_id": ["Already stored with another body; order ids are never reused."]},
        )
    raise DuplicateOrder(
        f"Order {stored.order_ref!r} was already recorded; nothing changed.",
        {"order_id": ["Already recorded (a replay is answered 409 and changes nothing)."]},
    )


def _coupon(site_id: int, code: str | None, strict: bool) -> tuple[CouponCode | None, str | None]:
    """The pool code of this text (None for no code or a wheel's fixed code), and, when the
    code cannot redeem and ``strict`` is off, why: ``not_issued`` or ``already_redeemed``.

    :raise Unprocessable: naming ``coupon_code`` when this site never had such a code.
    :raise Conflict: the pool code was already redeemed (by another order).
    """
    if code is None:
        return None, None
    coupon = db.session.scalar(
        select(CouponCode).where(CouponCode.site_id == site_id, CouponCode.code == code)
    )
    if coupon is not None:
        if coupon.status == "redeemed":
            if strict:
                raise _already_redeemed(code)
            return None, "already_redeemed"
        return coupon, None
    if db.session.scalar(_fixed_code_spins(site_id, code).limit(1)) is None:
        if strict:
            raise Unprocessable(
                "This coupon code was not issued by this site.",
                {"coupon_code": ["Unknown code: not in any of this site's pools or wheels."]},
            )
        return None, "not_issued"
    return None, None


def _fixed_code_spins(site_id: int, code: str):
    """Spins of the site's wheels that gave out ``code`` as a slice's fixed code."""
    return (
        select(Spin)
        .join(Campaign, Campaign.id == Spin.campaign_id)
        .where(Campaign.site_id == site_id, Spin.code == code, Spin.coupon_id.is_(None))
    )


def _fixed_code_spin_of(site_id: int, code: str, visitor_id: int) -> Spin | None:
    """The buyer's own spin that won this fixed code (or that of a visitor merged into the
    buyer): a fixed code is everyone's, so only the buyer's spin makes the order a redemption."""
    return db.session.scalar(
        _fixed_code_spins(site_id, code)
        .where(Spin.visitor_id.in_(ids_standing_for(visitor_id)))
        .order_by(Spin.id)
        .limit(1)
    )


def _already_redeemed(code: str) -> Conflict:
    return Conflict(
        "This coupon code was already redeemed by another order.",
        {"coupon_code": [f"{code!r} is single-use and already redeemed."]},
    )


def _visitor(site_id: int, order: dict, coupon: CouponCode | None) -> Visitor | None:
    if order.get("visitor_id"):
        visitor, _ = get_or_create_visitor(site_id, order["visitor_id"])
        return visitor
    if order.get("customer_id"):
        visitor = db.session.scalar(
            select(Visitor)
            .where(
                Visitor.site_id == site_id,
                Visitor.customer_id == order["customer_id"],
                Visitor.merged_into_id.is_(None),
            )
            .order_by(Visitor.id)
            .limit(1)
        )
        if visitor is not None:
            return visitor
    if coupon is not None and coupon.visitor_id is not None:
        return _survivor(db.session.get(Visitor, coupon.visitor_id))
    if order.get("email"):
        spinner_id = db.session.scalar(
            select(Spin.visitor_id)
            .join(Campaign, Campaign.id == Spin.campaign_id)
            .where(Campaign.site_id == site_id, Spin.email == normalised_email(order["email"]))
            .order_by(Spin.id.desc())
            .limit(1)
        )
        if spinner_id is not None:
            return _survivor(db.session.get(Visitor, spinner_id))
    return None


def _survivor(visitor: Visitor | None) -> Visitor | None:
    """The visitor itself, or, when identify merged it into the customer's visitor, that one."""
    if visitor is not None and visitor.merged_into_id is not None:
        return db.session.get(Visitor, visitor.merged_into_id)
    return visitor


def _insert(site_id, order, visitor, coupon, digest, ordered_at, now) -> int | None:
    """Insert the order unless its id is stored already (insert-ignore): the new row's id."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    customer_id = order.get("customer_id") or (visitor.customer_id if visitor else None)
    statement = (
        insert(Order)
        .values(
            site_id=site_id,
            order_ref=order["order_id"],
            customer_id=customer_id,
            visitor_id=visitor.id if visitor else None,
            total=Decimal(order["total"]),
            currency=order["currency"],
            coupon_code=order.get("coupon_code"),
            coupon_id=coupon.id if coupon else None,
            payload_sha256=digest,
            ordered_at=ordered_at,
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["site_id", "order_ref"])
        .returning(Order.id)
    )
    return db.session.scalar(statement)


def _redeem(coupon: CouponCode, now) -> bool:
    """Mark the code redeemed; the status check makes two orders racing for it end in one
    (False for the one that lost)."""
    codes = CouponCode.__table__
    done = db.session.execute(
        update(codes)
        .where(codes.c.id == coupon.id, codes.c.status != "redeemed")
        .values(status="redeemed", redeemed_at=now)
    )
    db.session.expire(coupon)
    return done.rowcount == 1


def _unlink_coupon(order_pk: int) -> None:
    """The order keeps its code's text but redeems no pool code (another order did)."""
    db.session.execute(update(Order).where(Order.id == order_pk).values(coupon_id=None))
