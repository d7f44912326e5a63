"""The applier: folds stored events into assignments, responses, rollups and funnel stages.

It claims a chunk of pending events, oldest first, with one ``UPDATE ... RETURNING`` that clears
their ``pending`` flag (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several appliers share the
queue without waiting on each other; SQLite's single writer serialises the claims), resolves the
chunk's visitors (creating the missing ones) and the variant each event counts under, and folds
them in bulk: a handful of set-based statements per chunk, none per event. Claim, fold and the
visitor and variant written back onto the events commit together, so a crash part-way through a
chunk leaves every one of its events pending and the next run applies each exactly once.

Per visitor, events are folded in the order they happened; folding is also insensitive to the
order chunks are applied in (the first impression and the first completion are kept by time, the
latest answer to a step wins), and the assignment rows are locked while a chunk folds, so two
appliers never lose an update. The browser only reports what the server showed it: an event
never creates or moves an assignment. An event for a campaign the visitor has no assignment to,
or is in the holdout or outside the sampled share of, counts nowhere; one naming a variant the
server does not show this visitor counts under the variant it does show.
"""

from collections import defaultdict
from datetime import datetime
from functools import cache

from sqlalchemy import bindparam, func, select, update

from ...extensions import db
from ...models import Assignment, Campaign, Event, Response, Visitor
from ...models.types import utcnow
from .. import funnel
from ..platform.upsert import insert_ignoring_conflicts
from ..promotion import metrics
from ..visitors.records import get_or_create_visitors

#: Events claimed and folded per transaction: large enough that the per-chunk statements cost
#: little per event, small enough that a chunk's locks and its transaction stay short.
CHUNK = 1000

_EVENTS = Event.__table__
_CLAIMED = (
    _EVENTS.c.id,
    _EVENTS.c.site_id,
    _EVENTS.c.type,
    _EVENTS.c.visitor_key,
    _EVENTS.c.campaign_id,
    _EVENTS.c.variant_id,
    _EVENTS.c.occurred_at,
    _EVENTS.c.received_at,
    _EVENTS.c.data,
)
#: The visitor and variant an applied event counts under, written back in one executemany.
_RESOLVED = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("event_id"))
    .values(visitor_id=bindparam("resolved_visitor"), variant_id=bindparam("resolved_variant"))
)


def apply_pending(limit: int = CHUNK) -> int:
    """Claim up to ``limit`` pending events, fold them and commit; how many were applied."""
    rows = _claim(_claim_oldest(db.session.get_bind().dialect.name), {"limit": limit})
    _apply(rows)
    db.session.commit()
    return len(rows)


def apply_all(chunk: int = CHUNK) -> int:
    """Apply pending events until none is left (tests, ``funnelcake apply-events``)."""
    total = 0
    while applied := apply_pending(chunk):
        total += applied
    return total


def apply_events(event_ids: list[int]) -> None:
    """Fold these just-stored events in the caller's transaction (``EVENTS_APPLY_INLINE``)."""
    _apply(_claim(_CLAIM_IDS, {"ids": event_ids}))


def apply_visitor(site_id: int, visitor_key: str) -> None:
    """Fold this visitor's pending events now, in the caller's transaction, so that a decision
    worth money (a spin) sees what the visitor just did. An applier holding some of them locked
    is waited for; they are then no longer pending and are skipped."""
    _apply(_claim(_CLAIM_VISITOR, {"of_site": site_id, "of_visitor": visitor_key}))


def backlog() -> dict:
    """How many events wait to be applied, and since when the oldest waits (``/readyz``)."""
    count, oldest = db.session.execute(
        select(func.count(), func.min(Event.received_at)).where(Event.pending)
    ).one()
    age_s = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
    return {"pending_events": count, "oldest_pending_age_s": round(max(age_s, 0.0), 3)}


@cache
def _claim_oldest(dialect: str):
    oldest = select(_EVENTS.c.id).where(_EVENTS.c.pending).order_by(_EVENTS.c.id)
    oldest = oldest.limit(bindparam("limit"))
    if dialect == "postgresql":
        oldest = oldest.with_for_update(skip_locked=True)
    return (
        update(_EVENTS)
        .where(_EVENTS.c.id.in_(oldest.scalar_subquery()))
        .values(pending=False)
        .returning(*_CLAIMED)
    )


_CLAIM_IDS = (
    update(_EVENTS)
    .where(_EVENTS.c.id.in_(bindparam("ids", expanding=True)), _EVENTS.c.pending)
    .values(pending=False)
    .returning(*_CLAIMED)
)
_CLAIM_VISITOR = (
    update(_EVENTS)
    .where(
        _EVENTS.c.site_id == bindparam("of_site"),
        _EVENTS.c.visitor_key == bindparam("of_visitor"),
        _EVENTS.c.pending,
    )
    .values(pending=False)
    .returning(*_CLAIMED)
)


def _claim(statement, params: dict) -> list[dict]:
    return [dict(row._mapping) for row in db.session.execute(statement, params)]


def _apply(rows: list[dict]) -> None:
    """Resolve the claimed events' visitors and variants, write them back, fold the events."""
    if not rows:
        return
    visitors = _visitors_of(rows)
    for row in rows:
        row["visitor_id"] = visitors[(row["site_id"], row["visitor_key"])].id
    assignments = _load_assignments(
        {(r["campaign_id"], r["visitor_id"]) for r in rows if r["campaign_id"]}
    )
    promoted = _promoted_variants({r["campaign_id"] for r in rows if r["campaign_id"]})
    for row in rows:
        row["variant_id"] = _variant_shown(row, assignments, promoted)
    db.session.connection().execute(
        _RESOLVED,
        [
            {
                "event_id": r["id"],
                "resolved_visitor": r["visitor_id"],
                "resolved_variant": r["variant_id"],
            }
            for r in rows
        ],
    )
    by_visitor = {v.id: v for v in visitors.values()}
    ordered = sorted(rows, key=lambda r: (r["occurred_at"], r["id"]))
    apply_effects(ordered, by_visitor, assignments)


def _visitors_of(rows: list[dict]) -> dict[tuple[int, str], Visitor]:
    """Every visitor the rows name, per site, the missing ones created (one statement a site)."""
    keys_by_site: dict[int, set[str]] = defaultdict(set)
    for row in rows:
        keys_by_site[row["site_id"]].add(row["visitor_key"])
    found = {}
    for site_id, keys in sorted(keys_by_site.items()):
        for key, visitor in get_or_create_visitors(site_id, keys).items():
            found[(site_id, key)] = visitor
    return found


def _promoted_variants(campaign_ids: set[int]) -> dict[int, int]:
    if not campaign_ids:
        return {}
    return dict(
        db.session.execute(
            select(Campaign.id, Campaign.promoted_variant_id).where(
                Campaign.id.in_(campaign_ids), Campaign.promoted_variant_id.is_not(None)
            )
        ).all()
    )


def _variant_shown(event: dict, assignments, promoted: dict[int, int]) -> int | None:
    """The variant an event counts under: the one the server shows this visitor, never the one
    the browser names when they differ; None when the server shows the campaign to no one of
    this visitor's kind (no assignment, holdout, sampled out) or the event names no campaign."""
    if not event["campaign_id"]:
        return None
    assignment = assignments.get((event["campaign_id"], event["visitor_id"]))
    if assignment is None or assignment.variant_id is None or assignment.sampled_out:
        return None
    claimed = event["variant_id"]
    if claimed is not None and claimed == promoted.get(event["campaign_id"]):
        return claimed  # after a promotion every visitor is shown the winner
    return assignment.variant_id


def apply_effects(
    events: list[dict],
    visitors: dict[int, Visitor],
    assignments: dict[tuple[int, int], Assignment],
) -> None:
    """Fold new events into assignments (impressions, closes, completions), responses, rollups.

    Only events with a variant are folded: :func:`_resolve` cleared it where the server shows
    the visitor nothing, so ``assignments`` (locked, from ``_load_assignments``) holds each one's.
    """
    campaign_events = [e for e in events if e["campaign_id"] and e["variant_id"]]
    if not campaign_events:
        return
    responses = _responses_for([e for e in campaign_events if e["type"] in ("answer", "complete")])
    rollups = metrics.IngestMetrics(assignments.values())
    for event in campaign_events:
        key = (event["campaign_id"], event["visitor_id"])
        assignment = assignments[key]
        rollups.fold(assignment, event)  # before the assignment changes: it tells "first time"
        at = event["occurred_at"]
        kind = event["type"]
        if kind == "impression":
            assignment.impressions += 1
            if assignment.first_impression_at is None or at < assignment.first_impression_at:
                assignment.first_impression_at = at
        elif kind == "close":
            assignment.last_closed_at = _latest(assignment.last_closed_at, at)
            _popup_ended(visitors[event["visitor_id"]], at)
        elif kind == "complete":
            assignment.completed_at = assignment.completed_at or at
            response = responses[key]
            response.completed = True
            response.completed_at = response.completed_at or at
            _popup_ended(visitors[event["visitor_id"]], at)
        elif kind == "answer":
            _fold_answer(responses[key], event)
    rollups.flush()
    answered = sorted({e["visitor_id"] for e in campaign_events if e["type"] == "answer"})
    if answered:
        funnel.on_answers([visitors[visitor_id] for visitor_id in answered])


def _popup_ended(visitor: Visitor, at: datetime) -> None:
    visitor.last_popup_end_at = _latest(visitor.last_popup_end_at, at)


def _latest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at > current else current


def _fold_answer(response: Response, event: dict) -> None:
    """The latest answer to a step wins, whatever order the events arrive in."""
    step_id = event["data"]["step_id"]
    at = event["occurred_at"]
    previous = (response.answers or {}).get(step_id)
    if previous and previous["at"] > at.isoformat():
        return
    response.answers = {
        **(response.answers or {}),
        step_id: {"value": event["data"]["value"], "at": at.isoformat()},
    }
    response.updated_at = _latest(response.updated_at, at)


def _load_assignments(keys) -> dict[tuple[int, int], Assignment]:
    """The stored assignments of these (campaign, visitor) pairs, locked (on PostgreSQL) so that
    two batches of one visitor cannot lose an update."""
    if not keys:
        return {}
    visitor_ids = {v for _, v in keys}
    rows = db.session.scalars(
        select(Assignment)
        .where(
            Assignment.visitor_id.in_(visitor_ids),
            Assignment.campaign_id.in_({c for c, _ in keys}),
        )
        .order_by(Assignment.id)
        .with_for_update()
    )
    return {(a.campaign_id, a.visitor_id): a for a in rows}


def _responses_for(events: list[dict]) -> dict[tuple[int, int], Response]:
    keys = {
        (e["campaign_id"], e["visitor_id"]): (e["variant_id"], e["occurred_at"]) for e in events
    }
    if not keys:
        return {}
    found = _load_responses(keys)
    missing = [
        {
            "campaign_id": c,
            "visitor_id": v,
            "variant_id": keys[(c, v)][0],
            "answers": {},
            "completed": False,
            "started_at": keys[(c, v)][1],
            "updated_at": keys[(c, v)][1],
        }
        for (c, v) in keys.keys() - found.keys()
    ]
    if missing:
        insert_ignoring_conflicts(Response, missing, ["campaign_id", "visitor_id"])
        found = _load_responses(keys)
    return found


def _load_responses(keys) -> dict[tuple[int, int], Response]:
    rows = db.session.scalars(
        select(Response)
        .where(
            Response.visitor_id.in_({v for _, v in keys}),
            Response.campaign_id.in_({c for c, _ in keys}),
        )
        .order_by(Response.id)
        .with_for_update()
    )
    return {(r.campaign_id, r.visitor_id): r for r in rows}
