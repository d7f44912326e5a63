"""What decide knows about one visitor, as one value: :class:`VisitorState`.

Decide's pure core (:func:`..campaigns.offers.offers_for`) reads nothing else about the visitor,
so the state can come from wherever it is cheapest (:mod:`.state_store`: this worker's memory,
Redis, or the database on a miss, :func:`load_state`). It is immutable: a change makes a new
state, and a state in a shared store is never changed in place.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import bindparam, select

from ...extensions import db
from ...models import Assignment, Event
from ...models.types import utcnow
from .records import LAST_SEEN_RESOLUTION, visitor_row

#: Event types that change what decide offers: an impression counts towards a cap, a close
#: starts ``days_after_close`` and the site cooldown, a completion ends a survey.
DECIDING_EVENT_TYPES = ("impression", "close", "complete")


@dataclass(frozen=True, slots=True)
class AssignmentState:
    """One of the visitor's assignments, as far as decide reads it."""

    campaign_id: int
    variant_id: int | None
    holdout: bool
    sampled_out: bool
    reward_only: bool
    impressions: int
    last_closed_at: datetime | None
    completed_at: datetime | None
    #: The stored row's id; None for an assignment decide has just made.
    id: int | None = None
    #: The campaign phase the assignment was made (or re-randomised) in.
    phase: int = 1


@dataclass(frozen=True, slots=True)
class VisitorState:
    """Everything decide needs about a visitor: their facts, their assignments (every one,
    whatever the campaign's status: a campaign started later finds none and makes one) and
    when their last popup ended (the site cooldown)."""

    visitor_id: int
    visitor_key: str
    first_seen_at: datetime
    last_seen_at: datetime
    order_count: int = 0
    stage: str | None = None
    #: Scores, orders or attributes known: without any, the visitor is in the entry stage.
    has_facts: bool = False
    attributes: dict = field(default_factory=dict)
    last_popup_end_at: datetime | None = None
    assignments: dict[int, AssignmentState] = field(default_factory=dict)

    def with_assignments(self, changed: list[AssignmentState]) -> "VisitorState":
        """This state with these assignments added or replaced."""
        if not changed:
            return self
        return replace(
            self, assignments={**self.assignments, **{a.campaign_id: a for a in changed}}
        )

    def with_events(self, events: list[tuple[int, str, datetime]]) -> "VisitorState":
        """This state once ``(campaign_id, type, occurred_at)`` events are applied, counted as
        the applier will: only under an assignment that shows a variant, in time order."""
        assignments = dict(self.assignments)
        last_popup_end = self.last_popup_end_at
        for campaign_id, kind, at in sorted(events, key=lambda e: e[2]):
            stored = assignments.get(campaign_id)
            if stored is None or stored.variant_id is None or stored.sampled_out:
                continue  # the applier counts it nowhere
            if kind == "impression":
                assignments[campaign_id] = replace(stored, impressions=stored.impressions + 1)
                continue
            if kind == "close":
                closed = max(filter(None, (stored.last_closed_at, at)))
                assignments[campaign_id] = replace(stored, last_closed_at=closed)
            elif kind == "complete":
                assignments[campaign_id] = replace(stored, completed_at=stored.completed_at or at)
            else:
                continue
            last_popup_end = max(filter(None, (last_popup_end, at)))
        return replace(self, assignments=assignments, last_popup_end_at=last_popup_end)


_ASSIGNMENTS = Assignment.__table__
#: Built once; a miss only binds the values.
_ASSIGNMENTS_OF = select(
    _ASSIGNMENTS.c.campaign_id,
    _ASSIGNMENTS.c.variant_id,
    _ASSIGNMENTS.c.holdout,
    _ASSIGNMENTS.c.sampled_out,
    _ASSIGNMENTS.c.reward_only,
    _ASSIGNMENTS.c.impressions,
    _ASSIGNMENTS.c.last_closed_at,
    _ASSIGNMENTS.c.completed_at,
    _ASSIGNMENTS.c.id,
    _ASSIGNMENTS.c.phase,
).where(_ASSIGNMENTS.c.visitor_id == bindparam("visitor_id"))

#: The visitor's stored but not yet applied events that change what decide offers.
_PENDING_OF = select(Event.campaign_id, Event.type, Event.occurred_at).where(
    Event.site_id == bindparam("site_id"),
    Event.visitor_key == bindparam("visitor_key"),
    Event.pending,
    Event.type.in_(DECIDING_EVENT_TYPES),
)


def load_state(site_id: int, visitor_key: str) -> VisitorState:
    """The visitor's state from the database (creating the visitor on first sight), with their
    pending impressions, closes and completions counted as the applier will count them.

    A survey completed or closed a moment ago is never offered again on the next page, even
    while the applier lags: the few pending events of this one visitor are read (a partial index
    holds only pending rows) and folded in.
    """
    visitor, created = visitor_row(site_id, visitor_key)
    now = utcnow()
    seen = visitor.last_seen_at
    if now - seen > LAST_SEEN_RESOLUTION:
        seen = now  # visitor_row has just refreshed it
    connection = db.session.connection()
    # Created just now: no assignment yet, and no pending event can count (events count only
    # under an assignment), so neither is read.
    assignments = {}
    if not created:
        assignments = {
            row.campaign_id: AssignmentState(*row)
            for row in connection.execute(_ASSIGNMENTS_OF, {"visitor_id": visitor.id})
        }
    state = VisitorState(
        visitor_id=visitor.id,
        visitor_key=visitor_key,
        first_seen_at=visitor.first_seen_at,
        last_seen_at=seen,
        order_count=visitor.order_count,
        stage=visitor.stage,
        has_facts=bool(visitor.order_count or visitor.scores or visitor.attributes),
        attributes=dict(visitor.attributes or {}),
        last_popup_end_at=visitor.last_popup_end_at,
        assignments=assignments,
    )
    if created:
        return state
    pending = connection.execute(
        _PENDING_OF, {"site_id": site_id, "visitor_key": visitor_key}
    ).all()
    return state.with_events([tuple(row) for row in pending]) if pending else state
