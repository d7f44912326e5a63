"""The site's loyalty funnel stages and every stage change of every visitor."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import JSONType, UTCDateTime, utcnow


class FunnelStage(db.Model):
    """One stage of a site's ordered funnel with its entry rule."""

    __tablename__ = "funnel_stages"
    __table_args__ = (UniqueConstraint("site_id", "key", name="uq_funnel_stages_site_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int]
    #: Entry rule over dimension scores, order count, total spent and attributes.
    rule: Mapped[dict] = mapped_column(JSONType, default=dict)


class StageChange(db.Model):
    """A visitor moved from one stage to another, when and why."""

    __tablename__ = "stage_changes"
    __table_args__ = (
        Index("ix_stage_changes_visitor", "visitor_id", "changed_at"),
        Index("ix_stage_changes_site_time", "site_id", "changed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    visitor_id: Mapped[int] = mapped_column(ForeignKey("visitors.id", ondelete="CASCADE"))
    from_stage: Mapped[str | None] = mapped_column(String(64))
    to_stage: Mapped[str | None] = mapped_column(String(64))
    #: What triggered the recomputation: ``answer``, ``order``, ``identify``, ``rules``.
    cause: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FunnelSnapshot(db.Model):
    """The latest funnel figures of a site (or of one of its campaigns) over some weeks.

    Computing them scans a site's visitors and orders, so the admin API answers from here; a
    reader that finds them older than ``FUNNEL_FIGURES_TTL_S`` asks for a refresh, which the
    worker's ``funnel-figures`` job computes.
    """

    __tablename__ = "funnel_snapshots"

    site_id: Mapped[int] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )
    #: The campaign the figures are filtered to; 0 for the whole site.
    campaign_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    weeks: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    #: When the computation of ``body`` started (its figures show the data of then or later).
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Set by a reader that found ``body`` stale; cleared when the worker has recomputed it.
    refresh_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    body: Mapped[dict] = mapped_column(JSONType)
