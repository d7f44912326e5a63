"""Identify: link a browser's visitor to a shop customer, merging one customer's visitors.

The surviving visitor of a customer is the oldest (first seen, then lowest id) of the site's
unmerged visitors that already carried the customer id; identifying another visitor with that
customer id merges it into the survivor:

* its orders, and its responses and assignments for campaigns the survivor has none of, move to
  the survivor; a response both have is folded (the latest answer to each step wins) and the
  merged visitor's copy removed; an assignment both have stays the survivor's (sticky variant),
  taking the later completion and close times so finished surveys are not shown again;
* its attributes are folded in (the newer visitor's values win, then this call's);
* it keeps its row and events, with ``merged_into_id`` pointing at the survivor, no stage and no
  scores; decide, events and identify with its key act on the survivor from then on.

Raw events stay on the visitor that sent them: they are the log of what that browser reported.
"""

from dataclasses import dataclass

from sqlalchemy import or_, select, text, update

from ...errors import Conflict
from ...extensions import db
from ...models import Assignment, Order, Response, Visitor
from ...models.types import utcnow
from ..funnel.stages import (
    apply_stages,
    record_changes,
    refresh_order_figures,
    rescore,
    stage_change,
)
from .records import get_or_create_visitor


@dataclass(frozen=True)
class IdentifyResult:
    visitor_key: str
    stage: str | None
    merged_visitor_keys: tuple[str, ...]


def identify(site_id: int, request: dict) -> IdentifyResult:
    """Link, merge and update attributes as ``request`` asks; restage with cause ``identify``.

    :raise Conflict: the visitor is already linked to another customer id.
    """
    now = utcnow()
    visitor, _ = get_or_create_visitor(site_id, request["visitor_id"])
    customer_id = request.get("customer_id")
    merged: list[Visitor] = []
    if customer_id:
        if visitor.customer_id and visitor.customer_id != customer_id:
            raise Conflict(
                "This visitor is linked to another customer; reset the visitor id first.",
                {"customer_id": ["Differs from the customer this visitor is linked to."]},
            )
        _lock_customer(site_id, customer_id)
        visitor.customer_id = customer_id
        db.session.flush()
        survivor, merged = _merge_customer(site_id, customer_id, visitor.id)
        visitor = survivor
        _claim_orders(visitor)
    email = request.get("email")
    if email and request.get("email_consent"):
        visitor.email = email
        visitor.email_consent = True
    elif request.get("email_consent") is False:
        # Consent withdrawn: the e-mail goes, and stage webhooks stop naming it.
        visitor.email = None
        visitor.email_consent = False
    if request.get("attributes"):
        visitor.attributes = _without_nulls({**(visitor.attributes or {}), **request["attributes"]})
    if merged or customer_id:
        refresh_order_figures([visitor])
        rescore([visitor])
    apply_stages([visitor], "identify", now)
    db.session.commit()
    return IdentifyResult(visitor.visitor_key, visitor.stage, tuple(m.visitor_key for m in merged))


def _without_nulls(attributes: dict) -> dict:
    """An attribute sent as null is removed."""
    return {k: v for k, v in attributes.items() if v is not None}


def _lock_customer(site_id: int, customer_id: str) -> None:
    """On PostgreSQL, two identify calls of one customer wait for each other (no twin survivors)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"funnelcake:identify:{site_id}:{customer_id}"},
        )


def _merge_customer(
    site_id: int, customer_id: str, identified_id: int
) -> tuple[Visitor, list[Visitor]]:
    """Fold every unmerged visitor of this customer into the survivor: the oldest visitor that
    carried the customer id before this call (the one identified now only when it is the first).
    Returns (survivor, merged)."""
    visitors = db.session.scalars(
        select(Visitor)
        .where(
            Visitor.site_id == site_id,
            Visitor.customer_id == customer_id,
            Visitor.merged_into_id.is_(None),
        )
        .order_by(Visitor.id == identified_id, Visitor.first_seen_at, Visitor.id)
        .with_for_update()
    ).all()
    survivor, others = visitors[0], visitors[1:]
    for other in others:
        _merge(other, survivor)
    return survivor, list(others)


def _merge(merged: Visitor, survivor: Visitor) -> None:
    db.session.execute(
        update(Order).where(Order.visitor_id == merged.id).values(visitor_id=survivor.id)
    )
    _merge_responses(merged, survivor)
    _merge_assignments(merged, survivor)
    db.session.execute(
        update(Visitor)
        .where(Visitor.merged_into_id == merged.id)
        .values(merged_into_id=survivor.id)
    )
    survivor.attributes = {**(survivor.attributes or {}), **(merged.attributes or {})}
    if merged.email_consent and merged.email and not survivor.email_consent:
        survivor.email, survivor.email_consent = merged.email, True
    survivor.last_popup_end_at = _later(survivor.last_popup_end_at, merged.last_popup_end_at)
    survivor.last_seen_at = _later(survivor.last_seen_at, merged.last_seen_at)
    if merged.stage is not None:
        # The merged visitor's history ends with a change to no stage.
        record_changes(
            merged.site_id,
            [stage_change(merged, None, "identify", utcnow())],
            {merged.id: merged},
        )
    merged.merged_into_id = survivor.id
    merged.stage = None
    merged.scores = {}
    merged.order_count = 0
    merged.total_spent = 0


def _later(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _merge_responses(merged: Visitor, survivor: Visitor) -> None:
    rows = db.session.scalars(
        select(Response)
        .where(Response.visitor_id.in_((merged.id, survivor.id)))
        .order_by(Response.id)
        .with_for_update()
    ).all()
    # Round by round: a recurring survey's rounds of one device meet the same rounds of the other.
    kept = {(r.campaign_id, r.round): r for r in rows if r.visitor_id == survivor.id}
    for response in rows:
        if response.visitor_id != merged.id:
            continue
        target = kept.get((response.campaign_id, response.round))
        if target is None:
            response.visitor_id = survivor.id
            continue
        answers = dict(target.answers or {})
        for step_id, answer in (response.answers or {}).items():
            if step_id not in answers or answers[step_id]["at"] < answer["at"]:
                answers[step_id] = answer
        target.answers = answers
        target.completed = target.completed or response.completed
        target.completed_at = target.completed_at or response.completed_at
        target.updated_at = _later(target.updated_at, response.updated_at)
        db.session.delete(response)
    db.session.flush()


def _merge_assignments(merged: Visitor, survivor: Visitor) -> None:
    rows = db.session.scalars(
        select(Assignment)
        .where(Assignment.visitor_id.in_((merged.id, survivor.id)))
        .order_by(Assignment.id)
        .with_for_update()
    ).all()
    kept = {a.campaign_id: a for a in rows if a.visitor_id == survivor.id}
    for assignment in rows:
        if assignment.visitor_id != merged.id:
            continue
        target = kept.get(assignment.campaign_id)
        if target is None:
            assignment.visitor_id = survivor.id
            continue
        target.completed_at = _later(target.completed_at, assignment.completed_at)
        target.last_closed_at = _later(target.last_closed_at, assignment.last_closed_at)
    db.session.flush()


def _claim_orders(visitor: Visitor) -> None:
    """Orders of this customer reported without a visitor, or of this visitor without a customer
    id, now belong to both: the customer figures and the visitor's stage see the same orders."""
    db.session.execute(
        update(Order)
        .where(
            Order.site_id == visitor.site_id,
            or_(
                (Order.customer_id == visitor.customer_id) & Order.visitor_id.is_(None),
                (Order.visitor_id == visitor.id) & Order.customer_id.is_(None),
            ),
        )
        .values(visitor_id=visitor.id, customer_id=visitor.customer_id)
    )
