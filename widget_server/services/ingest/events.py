"""Events: stored once per client-made id, then folded into assignments and responses.

A batch is validated whole (a 4xx rejects it whole, so the snippet drops nothing silently: it is
told). The insert skips ids already stored, and only the events that were new this time update
the counters and responses, so sending a batch twice changes nothing.

The browser only reports what the server showed it: an event never creates or moves an
assignment. An event for a campaign the visitor has no assignment to, or is in the holdout or
outside the sampled share of, is stored with no variant and folded into nothing; one naming a
variant the server does not show this visitor counts under the variant it does show.
"""

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ...errors import PayloadTooLarge, ValidationFailed
from ...extensions import db
from ...models import Assignment, Campaign, Event, Response, Variant, Visitor
from ...models.types import utcnow
from .. import funnel
from ..campaigns.site_config import SiteConfig
from ..platform.upsert import insert_ignoring_conflicts
from ..promotion import metrics
from ..visitors.records import get_or_create_visitors

MAX_EVENT_BYTES = 32 * 1024


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int


def check_event_sizes(raw_events: list) -> None:
    """:raise PayloadTooLarge: one event is over 32 KB."""
    for index, raw in enumerate(raw_events):
        if len(json.dumps(raw, separators=(",", ":"))) > MAX_EVENT_BYTES:
            raise PayloadTooLarge(
                f"Event {index} is larger than {MAX_EVENT_BYTES} bytes.",
                {f"events.{index}": ["Larger than 32 KB."]},
            )


def ingest(site: SiteConfig, events: list[dict]) -> IngestResult:
    """Store a validated batch; apply the effects of the events not seen before."""
    now = utcnow()
    site_id = site.id
    _check_campaigns(site, events)
    visitors = get_or_create_visitors(site_id, {e["visitor_id"] for e in events})
    assignments = _load_assignments(
        {(e["campaign_id"], visitors[e["visitor_id"]].id) for e in events if e.get("campaign_id")}
    )
    rows = []
    seen_in_batch = set()
    for event in events:
        if event["id"] in seen_in_batch:
            continue
        seen_in_batch.add(event["id"])
        ts = event.get("ts")
        rows.append(
            {
                "site_id": site_id,
                "event_uuid": event["id"],
                "type": event["type"],
                "visitor_id": visitors[event["visitor_id"]].id,
                "campaign_id": event.get("campaign_id"),
                "variant_id": _variant_shown(site, assignments, event, visitors),
                "occurred_at": min(ts, now) if ts else now,
                "received_at": now,
                "data": event.get("data") or {},
            }
        )
    inserted = {
        uuid
        for (uuid,) in insert_ignoring_conflicts(
            Event, rows, ["site_id", "event_uuid"], returning=[Event.event_uuid]
        )
    }
    fresh = sorted((r for r in rows if r["event_uuid"] in inserted), key=lambda r: r["occurred_at"])
    apply_effects(fresh, {v.id: v for v in visitors.values()}, assignments)
    db.session.commit()
    return IngestResult(accepted=len(inserted), duplicates=len(events) - len(inserted))


def _variant_shown(site: SiteConfig, assignments, event: dict, visitors) -> int | None:
    """The variant an event counts under: the one the server shows this visitor, never the one
    the browser names when they differ; None when the server shows the campaign to no one of
    this visitor's kind (no assignment, holdout, sampled out) or the event names no campaign."""
    if not event.get("campaign_id"):
        return None
    assignment = assignments.get((event["campaign_id"], visitors[event["visitor_id"]].id))
    if assignment is None or assignment.variant_id is None or assignment.sampled_out:
        return None
    claimed = event.get("variant_id")
    if claimed is not None and claimed == site.promoted_variant_of(event["campaign_id"]):
        return claimed  # after a promotion every visitor is shown the winner
    return assignment.variant_id


def _check_campaigns(site: SiteConfig, events: list[dict]) -> None:
    """Every campaign and variant named must be this site's, and the variant its campaign's.

    The site's cached running campaigns answer for nearly every event; only ids they do not
    know (a paused campaign's, a campaign started since the cache) are looked up.

    :raise ValidationFailed: naming ``events.<i>.campaign_id`` or ``events.<i>.variant_id``.
    """
    cached = site.campaign_of_variant
    running = set(cached.values())
    unknown = [
        e
        for e in events
        if (e.get("campaign_id") and e["campaign_id"] not in running)
        or (e.get("variant_id") and cached.get(e["variant_id"]) != e.get("campaign_id"))
    ]
    if not unknown:
        return
    variant_ids = {e["variant_id"] for e in unknown if e.get("variant_id")}
    campaign_ids = {e["campaign_id"] for e in unknown if e.get("campaign_id")}
    known_campaigns = running | set(
        db.session.scalars(
            select(Campaign.id).where(Campaign.site_id == site.id, Campaign.id.in_(campaign_ids))
        )
    )
    campaign_of_variant = cached | dict(
        db.session.execute(
            select(Variant.id, Variant.campaign_id).where(Variant.id.in_(variant_ids))
        ).all()
    )
    errors = {}
    for index, event in enumerate(events):
        campaign_id, variant_id = event.get("campaign_id"), event.get("variant_id")
        if campaign_id and campaign_id not in known_campaigns:
            errors[f"events.{index}.campaign_id"] = ["No such campaign on this site."]
        elif variant_id and campaign_of_variant.get(variant_id) != campaign_id:
            errors[f"events.{index}.variant_id"] = ["Not a variant of this campaign."]
    if errors:
        raise ValidationFailed("Some events name an unknown campaign or variant.", errors)


def apply_effects(
    events: list[dict],
    visitors: dict[int, Visitor],
    assignments: dict[tuple[int, int], Assignment],
) -> None:
    """Fold new events into assignments (impressions, closes, completions), responses, rollups.

    Only events with a variant are folded: ``ingest`` cleared it where the server shows the
    visitor nothing, so ``assignments`` (locked, from ``_load_assignments``) holds each one's.
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
