"""Visitors and their sticky assignments to campaign variants."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .metrics import STRATUM_LENGTH
from .types import JSONType, UTCDateTime, utcnow


class Visitor(db.Model):
    """An anonymous browser id made by the snippet, optionally linked to a customer."""

    __tablename__ = "visitors"
    __table_args__ = (
        UniqueConstraint("site_id", "visitor_key", name="uq_visitors_site_key"),
        Index("ix_visitors_site_customer", "site_id", "customer_id"),
        Index("ix_visitors_site_stage", "site_id", "stage"),
        Index("ix_visitors_merged_into", "merged_into_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    #: The id the snippet generated and keeps in first-party storage.
    visitor_key: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    email_consent: Mapped[bool] = mapped_column(default=False)
    attributes: Mapped[dict] = mapped_column(JSONType, default=dict)
    #: Survey dimension scores (emotional, intentional, ... csat, nps), recomputed from answers.
    scores: Mapped[dict] = mapped_column(JSONType, default=dict)
    #: Current loyalty funnel stage key (see FunnelStage), kept here so decide needs no join.
    stage: Mapped[str | None] = mapped_column(String(64))
    order_count: Mapped[int] = mapped_column(default=0)
    total_spent: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    #: Last time any popup was closed or completed: the site-wide cooldown starts here.
    last_popup_end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When two visitors turn out to be one customer, the younger points at the survivor.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("visitors.id"))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Assignment(db.Model):
    """Visitor x campaign -> variant (None: holdout), with the counters frequency caps need."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("campaign_id", "visitor_id", name="uq_assignments_campaign_visitor"),
        Index("ix_assignments_visitor", "visitor_id"),
        Index("ix_assignments_variant", "variant_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    visitor_id: Mapped[int] = mapped_column(ForeignKey("visitors.id", ondelete="CASCADE"))
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    holdout: Mapped[bool] = mapped_column(default=False)
    #: Not in the sampled share of traffic: never shown, not counted in results.
    sampled_out: Mapped[bool] = mapped_column(default=False)
    #: Made only because a survey's thank-you step offers this wheel: the visitor may spin once
    #: they completed such a survey (decide offering the wheel itself clears it).
    reward_only: Mapped[bool] = mapped_column(default=False, server_default=false())
    impressions: Mapped[int] = mapped_column(default=0)
    first_impression_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: What was known about the visitor when assigned (services/campaigns/strata.py): the
    #: stratum their figures count in; None for visitors assigned before strata were kept.
    stratum: Mapped[str | None] = mapped_column(String(STRATUM_LENGTH))
    #: The campaign phase the visitor counts in: the one they were first exposed in (sticky), or
    #: the one decide re-randomised them in.
    phase: Mapped[int] = mapped_column(default=1, server_default=text("1"))
