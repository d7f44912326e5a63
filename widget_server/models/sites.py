"""Sites (storefronts) and the credentials that act on them."""

import base64
import secrets
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import JSONType, UTCDateTime, utcnow


def new_site_key() -> str:
    return "pk_" + secrets.token_urlsafe(12)


def new_site_secret() -> str:
    return "sk_" + secrets.token_urlsafe(32)


def new_message_id() -> str:
    """A ``webhook-id``: ``msg_`` and 128 random bits (letters, digits, ``-`` and ``_``)."""
    return "msg_" + secrets.token_urlsafe(16)


def new_webhook_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and the base64 of 32 random bytes (the
    specification asks for 24 to 64); the HMAC key is the decoded bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


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
    #: Signs the outgoing webhooks (``webhook-signature``, Standard Webhooks); only the admin API
    #: and the admin page show it.
    webhook_secret: Mapped[str] = mapped_column(String(128), default=new_webhook_secret)
    #: The secret before the latest rotation: deliveries carry its signature too for a while
    #: after ``webhook_secret_rotated_at`` (``services.platform.webhooks.ROTATION_OVERLAP``).
    previous_webhook_secret: Mapped[str | None] = mapped_column(String(128))
    webhook_secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

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
    """One message to one receiver (a decision, a stage change, a survey response, a coupon) and
    its delivery state: the body as it is sent, the attempts made and when the next one is due."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        #: What a delivery announces, when it must be sent once only (a response's completion):
        #: a second insert of the same key is ignored.
        UniqueConstraint("delivery_key", name="uq_webhook_deliveries_delivery_key"),
        #: The sender's queue: only pending deliveries, by when they are due.
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        #: A site's delivery log, newest first.
        Index("ix_webhook_deliveries_site", "site_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    event: Mapped[str] = mapped_column(String(64))
    #: The body, as sent: ``{"type", "timestamp", "data"}`` (a Slack message for a response
    #: webhook in the ``slack`` format).
    payload: Mapped[dict] = mapped_column(JSONType)
    #: ``webhook-id``: the same on every attempt and on a redelivery (receivers deduplicate by
    #: it); never holds a ``.``, which separates it from the timestamp in what is signed.
    message_id: Mapped[str] = mapped_column(String(64), default=new_message_id)
    attempts: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    #: When the sender may take it next (None once delivered or failed).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
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
