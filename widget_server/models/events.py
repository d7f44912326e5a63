"""Raw events from browsers and the survey responses folded from them."""

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import JSONType, UTCDateTime, utcnow

EVENT_TYPES = ("impression", "step", "answer", "complete", "close", "spin", "claim", "convert")


class Event(db.Model):
    """One thing a browser reported; the client-made id makes re-sends harmless."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("site_id", "event_uuid", name="uq_events_site_uuid"),
        Index("ix_events_campaign_type", "campaign_id", "type"),
        Index("ix_events_visitor", "visitor_id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(db.Integer, "sqlite"), primary_key=True
    )
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    event_uuid: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))
    visitor_id: Mapped[int] = mapped_column(ForeignKey("visitors.id", ondelete="CASCADE"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    #: When the browser says it happened (clamped to the receive time if in the future).
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    data: Mapped[dict] = mapped_column(JSONType, default=dict)


class Response(db.Model):
    """The answers one visitor gave to one campaign, keyed by step id."""

    __tablename__ = "responses"
    __table_args__ = (
        UniqueConstraint("campaign_id", "visitor_id", name="uq_responses_campaign_visitor"),
        Index("ix_responses_campaign_updated", "campaign_id", "updated_at"),
        #: The funnel rescores a visitor from all their responses.
        Index("ix_responses_visitor", "visitor_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    visitor_id: Mapped[int] = mapped_column(ForeignKey("visitors.id", ondelete="CASCADE"))
    #: ``{step_id: {"value": ..., "at": iso-time}}``; the latest answer to a step wins.
    answers: Mapped[dict] = mapped_column(JSONType, default=dict)
    completed: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
