"""Sites (storefronts) and the credentials that act on them."""

import secrets
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import JSONType, UTCDateTime, utcnow


def new_site_key() -> str:
    return "pk_" + secrets.token_urlsafe(12)


def new_site_secret() -> str:
    return "sk_" + secrets.token_urlsafe(32)


class Site(db.Model):
    """One storefront: its public key, allowed origins and signing secret."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    site_key: Mapped[str] = mapped_column(String(64), unique=True, default=new_site_key)
    secret: Mapped[str] = mapped_column(String(128), default=new_site_secret)
    allowed_origins: Mapped[list] = mapped_column(JSONType, default=list)
    #: Site-wide settings, e.g. ``{"cooldown_hours": 24}``.
    settings: Mapped[dict] = mapped_column(JSONType, default=dict)
    #: Store platforms whose order webhooks the site receives, each with its webhook secret
    #: and whether the snippet links carts: ``{"shopify": {"webhook_secret": "...",
    #: "link_cart": true}}``. The secrets are never answered back (``schemas.views.site_json``).
    integrations: Mapped[dict] = mapped_column(JSONType, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    #: Raised in the transaction of every change to what decide caches of the site (its
    #: settings, campaigns, variants, stages, a promotion): web workers compare it with their
    #: copy's (``services.campaigns.site_config``) and reload on a difference.
    config_version: Mapped[int] = mapped_column(default=0, server_default="0")

    campaigns = relationship("Campaign", back_populates="site", order_by="Campaign.id")


class AdminToken(db.Model):
    """A bearer token for the admin API; only its SHA-256 is stored."""

    __tablename__ = "admin_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AdminUser(db.Model):
    """A person who logs in to the admin page."""

    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AdminSession(db.Model):
    """One live admin-page login; deleting the row ends it, whoever holds the cookie.

    The signed cookie carries a random token and only its SHA-256 is stored, so a copy of the
    database alone names no usable session.
    """

    __tablename__ = "admin_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("admin_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(db.Model):
    """An outgoing signed webhook (promotion, stage change, survey response) and its delivery
    state."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        #: What a delivery announces, when it must be sent once only (a response's completion):
        #: a second insert of the same key is ignored.
        UniqueConstraint("delivery_key", name="uq_webhook_deliveries_delivery_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSONType)
    attempts: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: ``response:<id>:<round>:<event>`` for a response webhook; None for the others.
    delivery_key: Mapped[str | None] = mapped_column(String(128))


class JobWatermark(db.Model):
    """How far a background scan has come (the id of the last row it is done with), shared by
    every worker: the next scan starts after it instead of reading the whole table again."""

    __tablename__ = "job_watermarks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
