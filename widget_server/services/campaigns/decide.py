"""Decide: which campaigns a visitor may see on this page, each with its sticky variant."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Row

from ab.assignment import bucket, choose_variant

from ...extensions import db
from ...models import Assignment, Event
from ...models.types import utcnow
from ..platform.upsert import insert_ignoring_conflicts
from ..visitors.records import visitor_row
from .site_config import CampaignConfig, SiteConfig
from .targeting import PageContext, rejection


@dataclass(frozen=True)
class Offer:
    """One campaign the visitor is eligible for, with its variant's public content."""

    campaign_id: int
    variant_id: int
    kind: str
    priority: int
    trigger: dict
    content: dict
    #: A survey whose thank-you step offers a spin: the wheel this visitor would spin
    #: (``{campaign_id, variant_id, kind, label, content}``), None when not eligible.
    reward: dict | None = None

    def as_json(self) -> dict:
        body = {
            "campaign_id": self.campaign_id,
            "variant_id": self.variant_id,
            "kind": self.kind,
            "priority": self.priority,
            "trigger": self.trigger,
            "content": self.content,
        }
        if self.reward is not None:
            body["reward"] = self.reward
        return body


@dataclass
class DecideResult:
    visitor_key: str
    offers: list[Offer]
    #: ``[(campaign_id, reason)]`` for campaigns not offered, for the snippet's debug mode.
    skipped: list[tuple[int, str]]


def decide(site: SiteConfig, request: dict) -> DecideResult:
    """Apply targeting, cooldown, frequency, sampling and holdout; assign new visitors."""
    now = utcnow()
    visitor = visitor_row(site.id, request["visitor_id"])
    page = _page_context(site, visitor, request, now)
    assignments = _assignments_of(visitor.id, [c.id for c in site.campaigns])
    assignments, last_popup_end = _with_pending_events(
        site.id, request["visitor_id"], assignments, visitor.last_popup_end_at
    )
    cooldown_reason = _cooldown_reason(site, last_popup_end, now)

    offers: list[Offer] = []
    skipped: list[tuple[int, str]] = []
    new_assignments: list[Assignment] = []
    #: Stored reward-only assignments of wheels this page offers by their own targeting.
    offered_itself: list[int] = []
    for campaign in site.campaigns:
        reason = cooldown_reason or rejection(campaign, page)
        assignment = assignments.get(campaign.id)
        if reason is None:
            reason = _frequency_reason(campaign, assignment, now)
        if reason is None and assignment is None:
            assignment = _new_assignment(campaign, visitor, now)
            new_assignments.append(assignment)
        if reason is None:
            reason = _exclusion_reason(assignment)
        if reason is not None:
            skipped.append((campaign.id, reason))
            continue
        variant = campaign.variant(campaign.promoted_variant_id or assignment.variant_id)
        if variant is None:
            skipped.append((campaign.id, "variant no longer exists"))
            continue
        if assignment.reward_only and assignment.id is not None:
            offered_itself.append(assignment.id)
        offers.append(
            Offer(
                campaign.id,
                variant.id,
                campaign.kind,
                campaign.priority,
                campaign.trigger,
                variant.public_content,
            )
        )
    offers = _with_rewards(site, visitor, offers, assignments, new_assignments, now)
    if new_assignments:
        inserted = insert_ignoring_conflicts(
            Assignment,
            [_row(a) for a in new_assignments],
            ["campaign_id", "visitor_id"],
            returning=[Assignment.campaign_id],
        )
        if len(inserted) < len(new_assignments):
            offers = _keep_stored_variants(site, visitor.id, offers)
    if offered_itself:
        db.session.connection().execute(_OFFERED_ITSELF, {"ids": offered_itself})
    db.session.commit()
    return DecideResult(request["visitor_id"], offers, skipped)


def _with_rewards(site, visitor, offers, assignments, new_assignments, now) -> list[Offer]:
    """Attach to each survey that offers a spin the reward wheel's content for this visitor.

    The reward wheel need not be eligible on this page by its own targeting (completing the
    survey earns it), but it must be running and the visitor outside its holdout; a visitor who
    has no assignment to it yet gets one here, so that the spin finds it.
    """
    campaigns = {c.id: c for c in site.campaigns}
    result = []
    for offer in offers:
        offered = (offer.content.get("thank_you") or {}).get("reward") or {}
        wheel = campaigns.get(offered.get("campaign_id"))
        if offer.kind != "survey" or wheel is None or wheel.kind != "wheel":
            result.append(offer)
            continue
        assignment = assignments.get(wheel.id) or next(
            (a for a in new_assignments if a.campaign_id == wheel.id), None
        )
        if assignment is None:
            assignment = _new_assignment(wheel, visitor, now, reward_only=True)
            new_assignments.append(assignment)
        variant = None
        if _exclusion_reason(assignment) is None:
            variant = wheel.variant(wheel.promoted_variant_id or assignment.variant_id)
        if variant is not None:
            offer = replace(
                offer,
                reward={
                    "campaign_id": wheel.id,
                    "variant_id": variant.id,
                    "kind": "wheel",
                    "label": offered.get("label"),
                    "content": variant.public_content,
                },
            )
        result.append(offer)
    return result


def _page_context(site: SiteConfig, visitor: Row, request: dict, now: datetime) -> PageContext:
    window = timedelta(minutes=current_app.config["NEW_VISITOR_WINDOW_MIN"])
    cart = request.get("cart") or {}
    stage = visitor.stage
    if stage is None and not (visitor.order_count or visitor.scores or visitor.attributes):
        stage = site.entry_stage  # no facts yet: the funnel counts them in its entry stage
    return PageContext(
        url=request["url"],
        device=request.get("device"),
        is_new=now - visitor.first_seen_at < window,
        order_count=visitor.order_count,
        stage=stage,
        attributes={**(visitor.attributes or {}), **(request.get("attributes") or {})},
        cart_value=cart.get("value"),
        cart_items=cart.get("items"),
    )


_ASSIGNMENTS = Assignment.__table__
#: Built once; a request only binds the visitor and the campaign ids.
_ASSIGNMENTS_OF = select(_ASSIGNMENTS).where(
    _ASSIGNMENTS.c.visitor_id == bindparam("visitor_id"),
    _ASSIGNMENTS.c.campaign_id.in_(bindparam("campaign_ids", expanding=True)),
)


#: A reward wheel decide now offers by its own targeting: it may be spun without the survey.
_OFFERED_ITSELF = (
    update(_ASSIGNMENTS)
    .where(_ASSIGNMENTS.c.id.in_(bindparam("ids", expanding=True)))
    .values(reward_only=False)
)


def _assignments_of(visitor_id: int, campaign_ids: list[int]) -> dict[int, Row]:
    """The visitor's stored assignments to these campaigns, as read-only rows."""
    if not campaign_ids:
        return {}
    rows = db.session.connection().execute(
        _ASSIGNMENTS_OF, {"visitor_id": visitor_id, "campaign_ids": campaign_ids}
    )
    return {a.campaign_id: a for a in rows}


#: The visitor's stored but not yet applied events that change what decide offers.
_PENDING_OF = select(Event.campaign_id, Event.type, Event.occurred_at).where(
    Event.site_id == bindparam("site_id"),
    Event.visitor_key == bindparam("visitor_key"),
    Event.pending,
    Event.type.in_(("impression", "close", "complete")),
)


def _with_pending_events(site_id: int, visitor_key: str, assignments: dict, last_popup_end):
    """The visitor's assignments and last popup end as they will be once the applier has
    folded the visitor's pending impressions, closes and completions.

    A survey completed or closed a moment ago is never offered again on the next page, even
    while the applier lags: decide reads the few pending events of this one visitor (a partial
    index holds only pending rows) and counts them as the applier will.
    """
    pending = (
        db.session.connection()
        .execute(_PENDING_OF, {"site_id": site_id, "visitor_key": visitor_key})
        .all()
    )
    if not pending:
        return assignments, last_popup_end
    folded = dict(assignments)
    for campaign_id, kind, at in sorted(pending, key=lambda row: row.occurred_at):
        stored = folded.get(campaign_id)
        if stored is None or stored.variant_id is None or stored.sampled_out:
            continue  # the applier counts it nowhere
        view = stored if isinstance(stored, SimpleNamespace) else SimpleNamespace(**stored._mapping)
        folded[campaign_id] = view
        if kind == "impression":
            view.impressions += 1
            continue
        if kind == "close":
            view.last_closed_at = max(filter(None, (view.last_closed_at, at)))
        else:
            view.completed_at = view.completed_at or at
        last_popup_end = max(filter(None, (last_popup_end, at)))
    return folded, last_popup_end


def _cooldown_reason(site: SiteConfig, last_popup_end, now: datetime) -> str | None:
    hours = float(site.settings.get("cooldown_hours") or 0)
    if hours and last_popup_end and now - last_popup_end < timedelta(hours=hours):
        return f"site cooldown of {hours:g} h after the last popup"
    return None


def _frequency_reason(campaign: CampaignConfig, assignment, now: datetime) -> str | None:
    if assignment is None:
        return None
    rules = campaign.frequency
    if rules.get("stop_after_complete", True) and assignment.completed_at:
        return "already completed"
    cap = rules.get("max_impressions")
    if cap and assignment.impressions >= cap:
        return f"shown {assignment.impressions} times (cap {cap})"
    days = rules.get("days_after_close")
    if (
        days
        and assignment.last_closed_at
        and now - assignment.last_closed_at < timedelta(days=days)
    ):
        return f"closed less than {days:g} days ago"
    return None


def _new_assignment(
    campaign: CampaignConfig, visitor: Row, now: datetime, reward_only: bool = False
) -> Assignment:
    """The hash decides new visitors only; stored assignments never move (sticky).

    The assignment is returned unsaved; decide inserts all new ones in one statement.
    ``reward_only``: made for a survey's reward wheel, which the visitor may spin only once
    they completed the survey.
    """
    sampling = float(campaign.frequency.get("sampling_percent", 100.0)) / 100.0
    sampled_out = (
        sampling < 1.0 and bucket(f"{campaign.seed}:sample", visitor.visitor_key) >= sampling
    )
    variant_id = None
    if not sampled_out:
        weights = [(v.id, v.weight) for v in campaign.variants]
        if not any(w > 0 for _, w in weights):
            weights = [(v.id, 1.0) for v in campaign.variants]
        variant_id = choose_variant(
            campaign.seed, visitor.visitor_key, weights, holdout=campaign.holdout
        )
    return Assignment(
        campaign_id=campaign.id,
        visitor_id=visitor.id,
        variant_id=variant_id,
        holdout=variant_id is None and not sampled_out,
        sampled_out=sampled_out,
        reward_only=reward_only,
        impressions=0,
        assigned_at=now,
    )


def _exclusion_reason(assignment: Assignment) -> str | None:
    if assignment.holdout:
        return "in the holdout"
    if assignment.sampled_out:
        return "outside the campaign's sampling share"
    return None


def _row(assignment: Assignment) -> dict:
    columns = (
        "campaign_id",
        "visitor_id",
        "variant_id",
        "holdout",
        "sampled_out",
        "reward_only",
        "impressions",
        "assigned_at",
    )
    return {name: getattr(assignment, name) for name in columns}


def _keep_stored_variants(site: SiteConfig, visitor_id: int, offers: list[Offer]) -> list[Offer]:
    """After a concurrent first decide won the insert, answer with the variant it stored."""
    stored = _assignments_of(visitor_id, [offer.campaign_id for offer in offers])
    by_id = {c.id: c for c in site.campaigns}
    kept = []
    for offer in offers:
        assignment = stored.get(offer.campaign_id)
        campaign = by_id[offer.campaign_id]
        if (
            assignment is None
            or campaign.promoted_variant_id
            or (assignment.variant_id == offer.variant_id)
        ):
            kept.append(offer)
            continue
        variant = campaign.variant(assignment.variant_id)
        if variant is not None and not assignment.holdout and not assignment.sampled_out:
            kept.append(
                Offer(
                    offer.campaign_id,
                    variant.id,
                    offer.kind,
                    offer.priority,
                    offer.trigger,
                    variant.public_content,
                )
            )
    return kept
