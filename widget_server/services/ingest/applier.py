"""The applier: folds stored events into assignments, responses, rollups and funnel stages.

It claims a chunk of pending events, oldest first (on PostgreSQL a ``SELECT ... FOR UPDATE SKIP
LOCKED``, so several appliers share the queue without waiting on each other; on SQLite a
``SELECT`` under the database's one writer lock, taken first, serialising the claims),
resolves the chunk's visitors (creating the missing ones) and the variant each event counts
under, and folds them in bulk: a handful of set-based statements per chunk, none per event (the
assignments, responses, visitors and events it changes are each written back by one statement).
Claim, fold and the events marked applied with their visitor and variant commit together, so a
crash part-way through a chunk leaves every one of its events pending and the next run applies
each exactly once.

Per visitor, events are folded in the order they happened; folding is also insensitive to the
order chunks are applied in (the first impression and the first completion are kept by time, the
latest answer to a step wins), and the assignment rows are locked while a chunk folds, so two
appliers never lose an update. The browser only reports what the server showed it: an event
never creates or moves an assignment. An event for a campaign the visitor has no assignment to,
or is in the holdout or outside the sampled share of, counts nowhere; one naming a variant the
server does not show this visitor counts under the variant it does show.
"""

import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from functools import cache

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from ...extensions import db
from ...models import Assignment, Campaign, Event, Response, StepReach, Variant, Visitor
from ...models.types import utcnow
from .. import funnel
from ..platform import stored_json
from ..platform.changes import note_changed_visitors
from ..platform.plans import NO_TABLE_SCANS, through_indexes
from ..platform.sets import one_of
from ..platform.sqlite_lock import take_writer_lock
from ..platform.upsert import add_to_counters, insert_ignoring_conflicts, update_rows
from ..promotion import metrics
from ..visitors.records import get_or_create_visitors
from . import response_webhooks

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
    _EVENTS.c.data,
)
#: What folding changes, written back with one statement per table (not one UPDATE per row).
_ASSIGNMENT_COLUMNS = ("impressions", "first_impression_at", "last_closed_at", "completed_at")
_RESPONSE_COLUMNS = ("answers", "hidden", "completed", "completed_at", "updated_at")
_VISITOR_COLUMNS = ("last_popup_end_at",)


#: Seconds between an applier's claims from the start of the queue (see :class:`ClaimCursor`).
SWEEP_S = 0.5


@dataclass
class ClaimCursor:
    """Where the appliers of one process claim next: after the newest event one of them claimed.

    On PostgreSQL an applied event leaves its entry in the queue's index until a vacuum removes
    it, so a claim of the oldest pending events walks every event applied since the last vacuum
    first: tens of milliseconds a chunk under load, more than storing the chunk cost. Claiming
    after the cursor walks only what is pending. An event can still be pending behind it (a
    batch whose insert committed after newer ones, a chunk whose transaction failed), so a claim
    starts from the beginning again once ``SWEEP_S`` has passed: such events are taken by the
    next sweep, half a second later at most (a chunk of them per sweep while the load lasts).
    Only then: an applier that keeps up reaches the queue's head at nearly every claim, and
    sweeping at each of them walked the whole applied log again (5 ms a claim, hundreds of
    claims a minute, after a 30 s load).
    Shared by the applier threads of a process, so they claim chunk after chunk instead of
    walking each other's.
    """

    after: int = 0
    swept_at: float = float("-inf")
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self) -> int:
        """The id the next claim starts after (0: a sweep from the beginning)."""
        with self.lock:
            now = time.monotonic()
            if now - self.swept_at >= SWEEP_S:
                self.swept_at = now
                return 0
            return self.after

    def claimed(self, rows: list[dict]) -> None:
        with self.lock:
            if rows:
                self.after = max(self.after, rows[-1]["id"])


def apply_pending(limit: int = CHUNK, cursor: ClaimCursor | None = None) -> int:
    """Claim up to ``limit`` pending events, fold them and commit; how many were applied.
    Without a ``cursor`` the claim takes the oldest pending events."""
    rows = _claim("oldest", {"limit": limit, "after": cursor.start() if cursor else 0})
    if cursor is not None:
        cursor.claimed(rows)
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
    _apply(_claim("ids", {"ids": event_ids}))


def apply_visitor(site_id: int, visitor_key: str) -> None:
    """Fold this visitor's pending events now, in the caller's transaction, so that a decision
    worth money (a spin) sees what the visitor just did. An applier holding some of them locked
    is waited for; they are then no longer pending and are skipped."""
    _apply(_claim("visitor", {"of_site": site_id, "of_visitor": visitor_key}))


BACKLOG = select(func.count(), func.min(Event.received_at)).where(Event.pending)


def backlog() -> dict:
    """How many events wait to be applied, and since when the oldest waits (``/readyz``): read
    through the queue's index, so a probe costs what is pending, not the size of the log."""
    with through_indexes() as connection:
        count, oldest = connection.execute(BACKLOG).one()
    age_s = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
    return {"pending_events": count, "oldest_pending_age_s": round(max(age_s, 0.0), 3)}


@cache
def _claims(dialect: str) -> dict:
    """The claims of pending events, built once per dialect: the oldest ``limit`` after the id
    ``after`` (the applier's chunk), given ``ids`` (applied inline), one visitor's (a spin).

    PostgreSQL locks the rows (``FOR UPDATE``, the chunk ``SKIP LOCKED`` so appliers do not wait
    on each other). SQLite locks no rows: there the claim first takes the database's one writer
    lock (``platform.sqlite_lock.take_writer_lock``), so nothing else changes the events until
    the commit.
    Either way :func:`_apply`'s one write of the resolved visitor and variant also clears
    ``pending``: each event is written once.
    """
    pending = _EVENTS.c.pending
    of = {
        "oldest": (pending, _EVENTS.c.id > bindparam("after")),
        "ids": (_EVENTS.c.id.in_(bindparam("ids", expanding=True)), pending),
        "visitor": (
            _EVENTS.c.site_id == bindparam("of_site"),
            _EVENTS.c.visitor_key == bindparam("of_visitor"),
            pending,
        ),
    }
    claims = {}
    for name, conditions in of.items():
        chosen = select(*_CLAIMED).where(*conditions).order_by(_EVENTS.c.id)
        if name == "oldest":
            chosen = chosen.limit(bindparam("limit"))
        if dialect == "postgresql":
            chosen = chosen.with_for_update(skip_locked=name == "oldest")
        claims[name] = chosen
    return claims


def _claim(name: str, params: dict) -> list[dict]:
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql" and name == "oldest":
        return _claim_chunk_postgresql(params)
    take_writer_lock(db.session)
    result = db.session.execute(_claims(dialect)[name], params)
    columns = list(result.keys())
    # fetchall: the driver loads the rows in one loop, not one call per row.
    return [dict(zip(columns, row, strict=True)) for row in result.all()]


#: The chunk's claim as the driver runs it: ``data`` read as text (parsed by
#: :func:`stored_json.loads`), the times as psycopg makes them (in the session's zone).
_CLAIM_CHUNK_SQL = (
    f"SELECT {', '.join(c.name for c in _CLAIMED if c.name != 'data')}, data::text"
    " FROM events WHERE pending AND id > %(after)s ORDER BY id LIMIT %(limit)s"
    " FOR UPDATE SKIP LOCKED"
)
_CLAIMED_NAMES = tuple(c.name for c in _CLAIMED if c.name != "data") + ("data",)


def _claim_chunk_postgresql(params: dict) -> list[dict]:
    """The oldest pending events after ``params["after"]``, read on the session's connection by
    the driver itself: the chunk's claim is the applier's largest read, and SQLAlchemy's row
    processing of it (a row object, a type conversion per time and per JSON value) cost twice
    what the driver's reading did. The rows come out as the other claims give them: times in
    UTC, ``data`` parsed. The chunk's transaction reads by key from here on."""
    with db.session.connection().connection.driver_connection.cursor() as cursor:
        # Planned by key whatever the statistics say (see ``platform.plans``): a new
        # installation's, taken while the log was empty, made this a read of the whole log.
        cursor.execute(NO_TABLE_SCANS)
        cursor.execute(_CLAIM_CHUNK_SQL, params)
        rows = [dict(zip(_CLAIMED_NAMES, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        row["occurred_at"] = row["occurred_at"].astimezone(UTC)
        row["data"] = stored_json.loads(row["data"])
    return rows


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
    rules = _campaign_rules({r["campaign_id"] for r in rows if r["campaign_id"]})
    for row in rows:
        row["variant_id"] = _variant_shown(row, assignments, rules.promoted)
        row["pending"] = False
    # The visitor and the variant each event counts under, applied, in one statement.
    update_rows(_EVENTS, ("pending", "visitor_id", "variant_id"), rows)
    by_visitor = {v.id: v for v in visitors.values()}
    note_changed_visitors(by_visitor)
    ordered = sorted(rows, key=lambda r: (r["occurred_at"], r["id"]))
    apply_effects(ordered, by_visitor, assignments, rules)


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


@dataclass(frozen=True)
class _CampaignRules:
    """What folding needs of the chunk's campaigns."""

    #: ``{campaign id: promoted variant id}`` of the campaigns with a winner.
    promoted: dict[int, int]
    #: ``{campaign id: days}`` of recurring surveys (``frequency.repeat_after_days``).
    repeat_after_days: dict[int, float] = field(default_factory=dict)
    #: ``{campaign id: completed responses}`` after which a survey completes.
    max_responses: dict[int, int] = field(default_factory=dict)
    #: ``{campaign id: [{step_id, option_id, max}]}``: a survey completes once one is reached.
    answer_quotas: dict[int, list[dict]] = field(default_factory=dict)


def _campaign_rules(campaign_ids: set[int]) -> _CampaignRules:
    if not campaign_ids:
        return _CampaignRules({})
    rows = db.session.execute(
        select(Campaign.id, Campaign.promoted_variant_id, Campaign.frequency).where(
            Campaign.id.in_(campaign_ids)
        )
    ).all()
    frequency = {c: f or {} for c, _, f in rows}

    def having(name: str) -> dict:
        return {c: f[name] for c, f in frequency.items() if f.get(name)}

    return _CampaignRules(
        promoted={c: v for c, v, _ in rows if v is not None},
        repeat_after_days={c: float(days) for c, days in having("repeat_after_days").items()},
        max_responses=having("max_responses"),
        answer_quotas=having("answer_quotas"),
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
    assignments: dict[tuple[int, int], "_AssignmentRow"],
    rules: _CampaignRules | None = None,
) -> None:
    """Fold new events into assignments (impressions, closes, completions), responses, rollups.

    Only events with a variant are folded: :func:`_variant_shown` cleared it where the server
    shows the visitor nothing, so ``assignments`` (locked, from ``_load_assignments``) holds each
    one's. What changed is written back with one statement per table; the responses completed
    here are announced to their sites' response webhooks (recorded, one insert).
    """
    campaign_events = [e for e in events if e["campaign_id"] and e["variant_id"]]
    if not campaign_events:
        return
    rules = rules or _CampaignRules({})
    responses = _responses_for(
        [e for e in campaign_events if e["type"] in ("answer", "complete")],
        rules.repeat_after_days,
    )
    left = _completions_left(rules.max_responses, campaign_events)
    identify_fields = _identify_fields(
        {e["variant_id"] for e in campaign_events if e["type"] in ("answer", "complete")}
    )
    rollups = metrics.IngestMetrics(assignments.values())
    reached: Counter = Counter()  # (campaign, variant, step, phase): first answers to it now
    popup_ends: dict[int, datetime] = {}
    for event in campaign_events:
        key = (event["campaign_id"], event["visitor_id"])
        kind = event["type"]
        if kind == "complete" and key[0] in left:
            if not responses[(*key, event["round"])].completed:
                if left[key[0]] <= 0:
                    continue  # over the quota: counted nowhere, the answers kept as partial
                left[key[0]] -= 1
        assignment = assignments[key]
        rollups.fold(assignment, event)  # before the assignment changes: it tells "first time"
        at = event["occurred_at"]
        if kind == "impression":
            assignment.impressions += 1
            if assignment.first_impression_at is None or at < assignment.first_impression_at:
                assignment.first_impression_at = at
        elif kind == "close":
            assignment.last_closed_at = _latest(assignment.last_closed_at, at)
            popup_ends[event["visitor_id"]] = _latest(popup_ends.get(event["visitor_id"]), at)
        elif kind == "complete":
            # The latest completion: a recurring survey is shown again counting from it.
            assignment.completed_at = _latest(assignment.completed_at, at)
            response = responses[(*key, event["round"])]
            _keep_hidden(response, event, identify_fields, visitors[key[1]])
            response.completed = True
            response.completed_at = response.completed_at or at
            popup_ends[event["visitor_id"]] = _latest(popup_ends.get(event["visitor_id"]), at)
        elif kind == "answer":
            _keep_hidden(
                responses[(*key, event["round"])], event, identify_fields, visitors[key[1]]
            )
            if _fold_answer(responses[(*key, event["round"])], event):
                step = (key[0], event["variant_id"], event["data"]["step_id"], assignment.phase)
                reached[step] += 1
    folded = sorted({(e["campaign_id"], e["visitor_id"]) for e in campaign_events})
    _write_back(Assignment, [assignments[key] for key in folded], _ASSIGNMENT_COLUMNS)
    _write_back(Response, [responses[key] for key in sorted(responses)], _RESPONSE_COLUMNS)
    response_webhooks.notify_completed(campaign_events, responses)
    full = {c for c, count in left.items() if count <= 0}
    _complete_campaigns(full | _answer_quotas_reached(rules.answer_quotas, campaign_events))
    _popups_ended(visitors, popup_ends)
    answered = sorted({e["visitor_id"] for e in campaign_events if e["type"] == "answer"})
    if answered:
        funnel.on_answers([visitors[visitor_id] for visitor_id in answered])
    # Last: every applier adds to the same few counter rows (a survey's step reach, its variants'
    # rollups), each locked from its upsert to the commit; earlier, they held the other appliers
    # back for the rest of the chunk (the funnel's restaging took most of it).
    add_to_counters(
        StepReach.__table__,
        ("campaign_id", "variant_id", "step_id", "phase"),
        "responses",
        reached,
    )
    rollups.flush()


def _completions_left(max_responses: dict[int, int], events: list[dict]) -> dict[int, int]:
    """``{campaign id: completions still to count}`` of the quota campaigns these events
    complete. The campaigns' rows are locked first (SQLite: the claim holds the writer lock),
    so two appliers count one after the other and the quota is never overshot."""
    ids = sorted(
        {e["campaign_id"] for e in events if e["type"] == "complete"} & max_responses.keys()
    )
    if not ids:
        return {}
    # FOR NO KEY UPDATE: appliers wait on each other here, not on the key-share locks their
    # own inserts of responses (which reference the campaign) already hold.
    db.session.execute(
        select(Campaign.id)
        .where(Campaign.id.in_(ids))
        .order_by(Campaign.id)
        .with_for_update(key_share=True)
    )
    counted = dict(
        db.session.execute(
            select(Response.campaign_id, func.count())
            .where(Response.campaign_id.in_(ids), Response.completed.is_(True))
            .group_by(Response.campaign_id)
        ).all()
    )
    return {c: max_responses[c] - counted.get(c, 0) for c in ids}


def _answer_quotas_reached(quotas: dict[int, list[dict]], events: list[dict]) -> set[int]:
    """The campaigns among those answered here where as many respondents as one of their answer
    quotas allows gave its option (one count per quota, by the responses' stored answers)."""
    answered = sorted({e["campaign_id"] for e in events if e["type"] == "answer"} & quotas.keys())
    reached = set()
    for campaign_id in answered:
        for quota in quotas[campaign_id]:
            chosen = Response.answers[quota["step_id"]]["value"].as_string()
            count = db.session.scalar(
                select(func.count())
                .select_from(Response)
                .where(Response.campaign_id == campaign_id, chosen == quota["option_id"])
            )
            if count >= quota["max"]:
                reached.add(campaign_id)
                break
    return reached


def _complete_campaigns(campaign_ids: set[int]) -> None:
    """Complete these running surveys: their quota is reached. The change raises the site's
    configuration version, so every worker stops offering them within ``CONFIG_CHECK_S``."""
    if not campaign_ids:
        return
    running = select(Campaign).where(Campaign.id.in_(campaign_ids), Campaign.status == "running")
    for campaign in db.session.scalars(running):
        campaign.status = "completed"
        campaign.ended_at = utcnow()
    db.session.flush()


def _popups_ended(visitors: dict[int, Visitor], popup_ends: dict[int, datetime]) -> None:
    """Move each visitor's ``last_popup_end_at`` (the site cooldown) forward, in one statement;
    the loaded visitors carry the new value as stored, so no flush writes them again."""
    moved = []
    for visitor_id, at in sorted(popup_ends.items()):
        visitor = visitors[visitor_id]
        if visitor.last_popup_end_at is None or at > visitor.last_popup_end_at:
            moved.append({"id": visitor_id, "last_popup_end_at": at})
            set_committed_value(visitor, "last_popup_end_at", at)
    update_rows(Visitor.__table__, _VISITOR_COLUMNS, moved)


def _latest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at > current else current


def _identify_fields(variant_ids: set[int]) -> dict[int, list[tuple[str, str]]]:
    """``{variant id: [(hidden field name, identify attribute)]}`` of the variants whose hidden
    fields come from ``identify``: one read of the answered variants' content per chunk."""
    if not variant_ids:
        return {}
    rows = db.session.execute(
        select(Variant.id, Variant.content).where(Variant.id.in_(variant_ids))
    ).all()
    found = {}
    for variant_id, content in rows:
        fields_ = [
            (f["name"], f["key"])
            for f in (content or {}).get("hidden_fields") or []
            if f.get("source") == "identify"
        ]
        if fields_:
            found[variant_id] = fields_
    return found


def _keep_hidden(response: "_ResponseRow", event: dict, identify_fields, visitor: Visitor) -> None:
    """The hidden fields the popup sent (page URL, snippet tag) and those of the visitor's
    identify attributes; the first value of each is kept (the page the survey was shown on)."""
    sent = (event.get("data") or {}).get("hidden") or {}
    attributes = visitor.attributes or {}
    found = {
        **{
            name: attributes[key]
            for name, key in identify_fields.get(event["variant_id"], ())
            if key in attributes
        },
        **sent,
    }
    new = {
        name: str(value)[:200]
        for name, value in found.items()
        if name not in (response.hidden or {})
    }
    if new:
        response.hidden = {**(response.hidden or {}), **new}


def _fold_answer(response: "_ResponseRow", event: dict) -> bool:
    """The latest answer to a step wins, whatever order the events arrive in. True when it is
    the response's first answer to the step (the step's reach counts it)."""
    step_id = event["data"]["step_id"]
    at = event["occurred_at"]
    previous = (response.answers or {}).get(step_id)
    if previous and previous["at"] > at.isoformat():
        return False
    response.answers = {
        **(response.answers or {}),
        step_id: {"value": event["data"]["value"], "at": at.isoformat()},
    }
    response.updated_at = _latest(response.updated_at, at)
    return previous is None


@dataclass(slots=True)
class _AssignmentRow:
    """An assignment as the applier folds it: what tells whether an event counts, and the
    counters events change. Plain rows, not ORM objects: a chunk folds hundreds, and the ORM's
    per-object bookkeeping cost more than the folding."""

    id: int
    campaign_id: int
    visitor_id: int
    variant_id: int | None
    sampled_out: bool
    impressions: int
    first_impression_at: datetime | None
    last_closed_at: datetime | None
    completed_at: datetime | None
    #: Where the rollups count the visitor (``services/campaigns/strata.py``); never changed here.
    stratum: str | None
    #: The campaign phase the visitor counts in; never changed here.
    phase: int


@dataclass(slots=True)
class _ResponseRow:
    """A visitor's answers to one survey as the applier folds them."""

    id: int
    campaign_id: int
    visitor_id: int
    round: int
    answers: dict
    hidden: dict
    completed: bool
    completed_at: datetime | None
    updated_at: datetime


def _columns_of(model, row_type) -> tuple:
    return tuple(model.__table__.c[f.name] for f in fields(row_type))


_ASSIGNMENT_ROW = _columns_of(Assignment, _AssignmentRow)
_RESPONSE_ROW = _columns_of(Response, _ResponseRow)


def _write_back(model, rows: list, columns: tuple[str, ...]) -> None:
    """Write the folded ``columns`` of ``rows`` in one statement. An ORM copy of one of them
    already in the session (a caller loaded it) is expired, so it reads the new values."""
    update_rows(
        model.__table__,
        columns,
        [{"id": row.id, **{name: getattr(row, name) for name in columns}} for row in rows],
    )
    loaded = db.session.identity_map
    for row in rows:
        copy = loaded.get(identity_key(model, row.id))
        if copy is not None:
            db.session.expire(copy)


def _load_assignments(keys) -> dict[tuple[int, int], _AssignmentRow]:
    """The stored assignments of these (campaign, visitor) pairs, locked (on PostgreSQL) so that
    two batches of one visitor cannot lose an update."""
    if not keys:
        return {}
    rows = db.session.execute(
        select(*_ASSIGNMENT_ROW)
        .where(
            one_of(Assignment.visitor_id, {v for _, v in keys}),
            Assignment.campaign_id.in_({c for c, _ in keys}),
        )
        .order_by(Assignment.id)
        .with_for_update()
    )
    found = (_AssignmentRow(*row) for row in rows.all())
    return {(a.campaign_id, a.visitor_id): a for a in found}


def _responses_for(
    events: list[dict], repeat_after_days: dict[int, float]
) -> dict[tuple[int, int, int], _ResponseRow]:
    """The responses these answers and completions fold into, by (campaign, visitor, round),
    locked; the missing ones are created (one statement) under the variant the visitor is shown.

    Each event gets its ``round``: the visitor's latest, or the next one when the campaign is a
    recurring survey and the event comes ``repeat_after_days`` after that round's completion
    (``occurred_at`` is never later than its arrival, so a browser cannot open a round early).
    ``events`` are in the order they are folded.
    """
    if not events:
        return {}
    found = _load_responses({(e["campaign_id"], e["visitor_id"]) for e in events})
    latest: dict[tuple[int, int], tuple[int, datetime | None]] = {}
    for (c, v, number), row in sorted(found.items()):
        latest[(c, v)] = (number, row.completed_at)
    needed: dict[tuple[int, int, int], tuple[int, datetime]] = {}
    for event in events:
        key = (event["campaign_id"], event["visitor_id"])
        number, completed_at = latest.get(key, (1, None))
        days = repeat_after_days.get(event["campaign_id"])
        at = event["occurred_at"]
        if days and completed_at is not None and at - completed_at >= timedelta(days=days):
            number, completed_at = number + 1, None
        if event["type"] == "complete" and completed_at is None:
            completed_at = at
        latest[key] = (number, completed_at)
        event["round"] = number
        needed.setdefault((*key, number), (event["variant_id"], at))
    missing = [
        {
            "campaign_id": c,
            "visitor_id": v,
            "round": number,
            "variant_id": variant_id,
            "answers": {},
            "completed": False,
            "started_at": at,
            "updated_at": at,
        }
        for (c, v, number), (variant_id, at) in sorted(needed.items())
        if (c, v, number) not in found
    ]
    if missing:
        created = insert_ignoring_conflicts(
            Response, missing, ["campaign_id", "visitor_id", "round"], returning=_RESPONSE_ROW
        )
        for row in created:
            found[(row.campaign_id, row.visitor_id, row.round)] = _ResponseRow(*row)
        if len(created) < len(missing):  # made meanwhile by another transaction
            found = _load_responses({(c, v) for c, v, _ in needed})
    return {key: found[key] for key in needed}


def _load_responses(keys) -> dict[tuple[int, int, int], _ResponseRow]:
    """Every round of these (campaign, visitor) pairs' responses, locked."""
    rows = db.session.execute(
        select(*_RESPONSE_ROW)
        .where(
            one_of(Response.visitor_id, {v for _, v in keys}),
            Response.campaign_id.in_({c for c, _ in keys}),
        )
        .order_by(Response.id)
        .with_for_update()
    )
    found = (_ResponseRow(*row) for row in rows.all())
    return {(r.campaign_id, r.visitor_id, r.round): r for r in found}
