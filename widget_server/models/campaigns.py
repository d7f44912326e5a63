"""Campaigns, their variants, and the promotion decisions taken on them."""

import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import JSONType, UTCDateTime, utcnow


class Campaign(db.Model):
    """One popup with a goal, its rules and A/B settings."""

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_site_status", "site_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    priority: Mapped[int] = mapped_column(default=0)
    targeting: Mapped[dict] = mapped_column(JSONType, default=dict)
    trigger: Mapped[dict] = mapped_column(JSONType, default=dict)
    frequency: Mapped[dict] = mapped_column(JSONType, default=dict)
    #: A/B settings: metric, method, alpha, holdout_percent and the promotion guardrails.
    ab: Mapped[dict] = mapped_column(JSONType, default=dict)
    #: Per-campaign hashing seed, so assignments in two campaigns are independent.
    seed: Mapped[str] = mapped_column(String(64), default=lambda: secrets.token_hex(8))
    promoted_variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("variants.id", use_alter=True, name="fk_campaigns_promoted_variant")
    )
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The current phase: an edit of a running campaign's content, weights, targeting or trigger
    #: starts the next one, and the statistics read one phase (docs/promotion.md, "Phases").
    phase: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    #: When the current phase started (None for phase 1: the campaign's ``started_at``).
    phase_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The phases after the first: ``[{number, started_at, changed, assignments}]``.
    phase_history: Mapped[list | None] = mapped_column(JSONType, default=list)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    site = relationship("Site", back_populates="campaigns")
    variants = relationship(
        "Variant",
        back_populates="campaign",
        order_by="Variant.id",
        foreign_keys="Variant.campaign_id",
        cascade="all, delete-orphan",
    )


class Variant(db.Model):
    """One version of a campaign's content with its traffic weight."""

    __tablename__ = "variants"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    is_control: Mapped[bool] = mapped_column(default=False)
    weight: Mapped[float] = mapped_column(default=1.0)
    content: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    campaign = relationship("Campaign", back_populates="variants", foreign_keys=[campaign_id])


class Decision(db.Model):
    """An automatic or manual promotion (or stop, or undo) with the statistics behind it."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    #: ``promote``, ``stop``, ``undo``, or ``hold`` (a guardrail metric holds the winner back).
    action: Mapped[str] = mapped_column(String(16))
    winner_variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("variants.id", ondelete="SET NULL")
    )
    automatic: Mapped[bool] = mapped_column(default=True)
    reason: Mapped[str] = mapped_column(String(1000), default="")
    #: Variant weights before the decision, so an undo can restore them.
    previous_weights: Mapped[dict] = mapped_column(JSONType, default=dict)
    #: The results (per-variant figures, SRM, method) the decision was based on.
    snapshot: Mapped[dict] = mapped_column(JSONType, default=dict)
    #: The campaign phase whose figures the decision judged.
    phase: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
