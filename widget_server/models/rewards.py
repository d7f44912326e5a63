"""Coupon pools and codes, wheel spins, and the orders that redeem codes."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow


class CouponPool(db.Model):
    """A named set of single-use discount codes."""

    __tablename__ = "coupon_pools"
    __table_args__ = (UniqueConstraint("site_id", "name", name="uq_coupon_pools_site_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CouponCode(db.Model):
    """One code; given to at most one visitor, ever."""

    __tablename__ = "coupon_codes"
    __table_args__ = (
        UniqueConstraint("site_id", "code", name="uq_coupon_codes_site_code"),
        Index("ix_coupon_codes_pool_status", "pool_id", "status"),
        # The next available code of a pool (lowest id) is the first entry of an index range.
        Index(
            "ix_coupon_codes_available",
            "pool_id",
            "id",
            postgresql_where=text("status = 'available'"),
            sqlite_where=text("status = 'available'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    pool_id: Mapped[int] = mapped_column(ForeignKey("coupon_pools.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(100))
    #: ``available`` -> ``assigned`` (handed out by a spin) -> ``redeemed`` (used in an order).
    status: Mapped[str] = mapped_column(String(16), default="available")
    visitor_id: Mapped[int | None] = mapped_column(ForeignKey("visitors.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id", ondelete="SET NULL"))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Set by the spin that handed the code out when its slice gives codes an expiry: an order
    #: made from then on does not redeem it.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Spin(db.Model):
    """The one spin a visitor gets per wheel campaign, decided by the server."""

    __tablename__ = "spins"
    __table_args__ = (
        UniqueConstraint("campaign_id", "visitor_id", name="uq_spins_campaign_visitor"),
        # One reward per e-mail address per campaign; NULLs (no e-mail) never clash. E-mail
        # first: the wheel's spins are read by (campaign, visitor), through the one index that
        # starts with the campaign (migration 0022).
        UniqueConstraint("email", "campaign_id", name="uq_spins_email_campaign"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    visitor_id: Mapped[int] = mapped_column(ForeignKey("visitors.id", ondelete="CASCADE"))
    slice_index: Mapped[int]
    label: Mapped[str] = mapped_column(String(200))
    code: Mapped[str | None] = mapped_column(String(100))
    coupon_id: Mapped[int | None] = mapped_column(ForeignKey("coupon_codes.id"))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    #: When the won code stops being valid (the slice's ``expires_in_minutes`` after the spin);
    #: None: it does not expire. Set once, by the server; a repeated spin answers it unchanged.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Order(db.Model):
    """A purchase reported by the shop's back end; idempotent by the shop's order id."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("site_id", "order_ref", name="uq_orders_site_ref"),
        Index("ix_orders_site_customer", "site_id", "customer_id", postgresql_include=["total"]),
        Index("ix_orders_visitor", "visitor_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    order_ref: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[str | None] = mapped_column(String(200))
    visitor_id: Mapped[int | None] = mapped_column(ForeignKey("visitors.id", ondelete="SET NULL"))
    total: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    coupon_code: Mapped[str | None] = mapped_column(String(100))
    coupon_id: Mapped[int | None] = mapped_column(ForeignKey("coupon_codes.id"))
    #: SHA-256 of the order as first received: a replay must match it, else it is a conflict.
    payload_sha256: Mapped[str | None] = mapped_column(String(64))
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PlatformReceipt(db.Model):
    """A store platform's webhook delivery that recorded an order, by the platform's delivery id
    (``X-Shopify-Webhook-Id``, ``X-WC-Webhook-Delivery-ID``): the same delivery again (the
    platform retrying) changes nothing. Written in the order's own transaction."""

    __tablename__ = "platform_receipts"
    __table_args__ = (
        UniqueConstraint("site_id", "platform", "webhook_id", name="uq_platform_receipts_delivery"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(16))
    webhook_id: Mapped[str] = mapped_column(String(200))
    order_ref: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
