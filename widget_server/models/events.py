"""Raw events from browsers and the survey responses folded from them."""

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import JSONType, UTCDateTime, utcnow

#: ``teaser_shown``/``teaser_open``: the tab a closed popup leaves was drawn / clicked to reopen
#: it. Names fit ``type``'s 16 characters.
EVENT_TYPES = (
    "impression",
    "step",
    "answer",
    "complete",
    "close",
    "spin",
    "claim",
    "convert",
    "teaser_shown",
    "teaser_open",
)
#: The teaser's events: counted per variant (once per visitor), never as impressions.
TEASER_EVENT_TYPES = ("teaser_shown", "teaser_open")


class Event(db.Model):
    """One thing a browser reported; the client-made id makes re-sends harmless.

    The events endpoint stores a batch as it came (``pending``, with the browser's
    ``visitor_key``); the applier later resolves the visitor and the variant shown and folds the
    event into assignments, responses and rollups, clearing ``pending`` in the same transaction.

    A log, written at the rate browsers send: no foreign keys (each was a lookup and a share lock
    on a parent row at every insert) and no index that no query reads. The application vouches
    for the ids: the endpoint takes site, campaign and variant from the site's configuration, the
    applier the visitor it resolved; none of those parents is ever deleted.
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("site_id", "event_uuid", name="uq_events_site_uuid"),
        #: The applier's queue: only pending rows are in it, oldest first.
        Index(
            "ix_events_pending",
            "id",
            postgresql_where=text("pending"),
            sqlite_where=text("pending"),
        ),
        #: Decide reads a visitor's not yet applied closes and completions.
        Index(
            "ix_events_pending_visitor",
            "site_id",
            "visitor_key",
            postgresql_where=text("pending"),
            sqlite_where=text("pending"),
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(db.Integer, "sqlite"), primary_key=True
    )
    site_id: Mapped[int]
    event_uuid: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))
    #: The snippet's visitor id as sent; ``visitor_id`` is filled in when the event is applied.
    visitor_key: Mapped[str | None] = mapped_column(String(64))
    visitor_id: Mapped[int | None]
    campaign_id: Mapped[int | None]
    #: The variant the event counts under (the one the server shows the visitor), set when it
    #: is applied; None when it counts nowhere.
    variant_id: Mapped[int | None]
    #: Stored but not yet applied.
    pending: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: When the browser says it happened (clamped to the receive time if in the future).
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    data: Mapped[dict] = mapped_column(JSONType, default=dict)


class Response(db.Model):
    """The answers one visitor gave to one campaign, keyed by step id."""

    __tablename__ = "responses"
    __table_args__ = (
        #: One response per round: a survey shown again after ``frequency.repeat_after_days``
        #: starts the visitor's next round.
        UniqueConstraint(
            "campaign_id", "visitor_id", "round", name="uq_responses_campaign_visitor_round"
        ),
        Index("ix_responses_campaign_updated", "campaign_id", "updated_at"),
        #: The funnel rescores a visitor from all their responses.
        Index("ix_responses_visitor", "visitor_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    visitor_id: Mapped[int] = mapped_column(ForeignKey("visitors.id", ondelete="CASCADE"))
    #: 1 for the visitor's first response; a recurring survey's next showing starts round 2.
    round: Mapped[int] = mapped_column(default=1, server_default="1")
    #: ``{name: text}``: the variant's hidden fields (from the page URL, the snippet tag or
    #: identify's attributes); the first value of each is kept.
    hidden: Mapped[dict] = mapped_column(JSONType, default=dict, server_default="{}")
    #: ``{step_id: {"value": ..., "at": iso-time}}``; the latest answer to a step wins.
    answers: Mapped[dict] = mapped_column(JSONType, default=dict)
    completed: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
