"""Decide's pure core: which campaigns a visitor may see on a page, with their variants.

:func:`offers_for` reads only its arguments (the site's compiled configuration, the visitor's
:class:`~..visitors.state.VisitorState`, the page the snippet describes and the time) and does
no I/O, so the shell around it (:mod:`.decide`) chooses where the state comes from and what is
written, and the rules here are tested without a database.
"""

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from ab.assignment import bucket, choose_variant, phase_seed

from ..visitors.state import AssignmentState, VisitorState
from .site_config import CampaignConfig, SiteConfig, VariantConfig
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
    #: The campaign's ``frequency.teaser`` (``{text, side, days}``): after a close, the renderer
    #: leaves a tab that reopens the popup. None when the campaign has none.
    teaser: dict | None = None
    #: :meth:`as_json` already encoded (once per configuration copy), when nothing of this
    #: visitor's is in it; None otherwise.
    encoded: str | None = None

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
        if self.teaser is not None:
            body["teaser"] = self.teaser
        return body


@dataclass
class Decision:
    """What :func:`offers_for` found, and what the shell must store for it."""

    offers: list[Offer]
    #: ``[(campaign_id, reason)]`` for campaigns not offered, for the snippet's debug mode.
    skipped: list[tuple[int, str]]
    #: Assignments made now (the hash decides new visitors only): to be stored.
    new_assignments: list[AssignmentState] = field(default_factory=list)
    #: Stored assignments of an earlier phase assigned afresh now (the campaign's phase
    #: re-randomised them): to be written over the stored ones.
    rerandomized: list[AssignmentState] = field(default_factory=list)
    #: Stored reward-only assignments of wheels this page offers by their own targeting: from
    #: now on they may be spun without the survey.
    offered_itself: list[AssignmentState] = field(default_factory=list)
    #: Campaigns closed within their teaser's window and not offered as a popup now: the page
    #: draws only their tab (at most one, the highest priority's).
    teasers: list[Offer] = field(default_factory=list)


def offers_for(site: SiteConfig, visitor: VisitorState, page: dict, now: datetime) -> Decision:
    """Apply targeting, the site cooldown, frequency rules, sampling and holdout; assign
    campaigns the visitor has no assignment to. ``page`` is decide's validated request."""
    context = page_context(site, visitor, page, now)
    cooldown_reason = _cooldown_reason(site, visitor.last_popup_end_at, now)
    assignments = visitor.assignments
    decision = Decision([], [])
    for campaign in site.campaigns:
        targeting_reason = rejection(campaign, context)
        reason = cooldown_reason or targeting_reason
        assignment = assignments.get(campaign.id)
        if reason is None:
            reason = _frequency_reason(campaign, assignment, now)
        if reason is None and assignment is None:
            assignment = new_assignment(campaign, visitor.visitor_key)
            decision.new_assignments.append(assignment)
        elif reason is None and assignment.phase < campaign.rerandomized_phase:
            assignment = rerandomized(campaign, visitor.visitor_key, assignment)
            decision.rerandomized.append(assignment)
        if reason is None:
            reason = _exclusion_reason(assignment)
        if reason is not None:
            decision.skipped.append((campaign.id, reason))
            if targeting_reason is None and not decision.teasers:
                teaser = _teaser_offer(campaign, assignment, now)
                if teaser is not None:
                    decision.teasers.append(teaser)
            continue
        variant = campaign.variant(campaign.promoted_variant_id or assignment.variant_id)
        if variant is None:
            decision.skipped.append((campaign.id, "variant no longer exists"))
            continue
        if assignment.reward_only and assignment.id is not None:
            decision.offered_itself.append(replace(assignment, reward_only=False))
        decision.offers.append(offer_of(campaign, variant))
    decision.offers = _with_rewards(site, visitor, decision, decision.offers)
    decision.teasers = _with_rewards(site, visitor, decision, decision.teasers)
    return decision


def _teaser_offer(
    campaign: CampaignConfig, assignment: AssignmentState | None, now: datetime
) -> Offer | None:
    """The campaign as a tab only, when the visitor closed its popup less than
    ``frequency.teaser.days`` ago and has not completed it.

    The frequency rules keep the popup itself away (a cap, ``days_after_close``, the site
    cooldown); the tab is not a popup, and only the visitor's own click opens one. It needs a
    shown and closed popup: an assignment with an impression and a close, not in the holdout
    nor sampled out, and a variant that still exists.
    """
    days = (campaign.frequency.get("teaser") or {}).get("days")
    if (
        not days
        or assignment is None
        or _exclusion_reason(assignment) is not None
        or not assignment.impressions
        or assignment.completed_at is not None
        or assignment.last_closed_at is None
        or now - assignment.last_closed_at >= timedelta(days=days)
    ):
        return None
    variant = campaign.variant(campaign.promoted_variant_id or assignment.variant_id)
    return None if variant is None else _offer(campaign, variant)


def _with_rewards(
    site: SiteConfig, visitor: VisitorState, decision: Decision, offers: list[Offer]
) -> list[Offer]:
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
        assignment = visitor.assignments.get(wheel.id) or next(
            (a for a in decision.new_assignments if a.campaign_id == wheel.id), None
        )
        if assignment is None:
            assignment = new_assignment(wheel, visitor.visitor_key, reward_only=True)
            decision.new_assignments.append(assignment)
        variant = None
        if _exclusion_reason(assignment) is None:
            variant = wheel.variant(wheel.promoted_variant_id or assignment.variant_id)
        if variant is not None:
            offer = replace(
                offer,
                encoded=None,
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


def offer_of(campaign: CampaignConfig, variant: VariantConfig) -> Offer:
    """The offer of this variant, its JSON encoded once per configuration copy."""
    encoded = campaign.encoded_offers.get(variant.id)
    if encoded is None:
        encoded = campaign.encoded_offers[variant.id] = _encode(_offer(campaign, variant))
    return replace(_offer(campaign, variant), encoded=encoded)


def _offer(campaign: CampaignConfig, variant: VariantConfig) -> Offer:
    return Offer(
        campaign.id,
        variant.id,
        campaign.kind,
        campaign.priority,
        campaign.trigger,
        variant.public_content,
        teaser=campaign.frequency.get("teaser"),
    )


def _encode(offer: Offer) -> str:
    return json.dumps(offer.as_json(), separators=(",", ":"))


def page_context(site: SiteConfig, visitor: VisitorState, page: dict, now: datetime) -> PageContext:
    cart = page.get("cart") or {}
    stage = visitor.stage
    if stage is None and not visitor.has_facts:
        stage = site.entry_stage  # no facts yet: the funnel counts them in its entry stage
    return PageContext(
        url=page["url"],
        device=page.get("device"),
        is_new=now - visitor.first_seen_at < site.new_visitor_window,
        order_count=visitor.order_count,
        stage=stage,
        attributes={**visitor.attributes, **(page.get("attributes") or {})},
        cart_value=cart.get("value"),
        cart_items=cart.get("items"),
    )


def _cooldown_reason(site: SiteConfig, last_popup_end, now: datetime) -> str | None:
    hours = float(site.settings.get("cooldown_hours") or 0)
    if hours and last_popup_end and now - last_popup_end < timedelta(hours=hours):
        return f"site cooldown of {hours:g} h after the last popup"
    return None


def _frequency_reason(
    campaign: CampaignConfig, assignment: AssignmentState | None, now: datetime
) -> str | None:
    if assignment is None:
        return None
    rules = campaign.frequency
    if rules.get("stop_after_complete", True) and assignment.completed_at:
        repeat = rules.get("repeat_after_days")
        if not repeat:
            return "already completed"
        if now - assignment.completed_at < timedelta(days=repeat):
            return f"completed less than {repeat:g} days ago (shown again after)"
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


def new_assignment(
    campaign: CampaignConfig, visitor_key: str, reward_only: bool = False
) -> AssignmentState:
    """The hash decides new visitors only; stored assignments never move (sticky).

    ``reward_only``: made for a survey's reward wheel, which the visitor may spin only once
    they completed the survey.
    """
    sampling = float(campaign.frequency.get("sampling_percent", 100.0)) / 100.0
    sampled_out = sampling < 1.0 and bucket(f"{campaign.seed}:sample", visitor_key) >= sampling
    variant_id = None if sampled_out else _variant_drawn(campaign, visitor_key)
    return AssignmentState(
        campaign_id=campaign.id,
        variant_id=variant_id,
        holdout=variant_id is None and not sampled_out,
        sampled_out=sampled_out,
        reward_only=reward_only,
        impressions=0,
        last_closed_at=None,
        completed_at=None,
        phase=campaign.phase,
    )


def rerandomized(
    campaign: CampaignConfig, visitor_key: str, assignment: AssignmentState
) -> AssignmentState:
    """An assignment of an earlier phase, assigned afresh in a phase that re-randomised them
    (with that phase's seed, so every worker draws the same); its frequency counters are kept,
    and a visitor outside the sampled share stays outside."""
    if assignment.sampled_out:
        return replace(assignment, phase=campaign.phase)
    variant_id = _variant_drawn(campaign, visitor_key)
    return replace(assignment, variant_id=variant_id, holdout=variant_id is None,
                   phase=campaign.phase)  # fmt: skip


def _variant_drawn(campaign: CampaignConfig, visitor_key: str) -> int | None:
    """The hash's variant for this visitor (None: the holdout), by the current weights and the
    seed of the latest phase that re-randomised the assignments."""
    weights = [(v.id, v.weight) for v in campaign.variants]
    if not any(w > 0 for _, w in weights):
        weights = [(v.id, 1.0) for v in campaign.variants]
    seed = phase_seed(campaign.seed, campaign.rerandomized_phase)
    return choose_variant(seed, visitor_key, weights, holdout=campaign.holdout)


def _exclusion_reason(assignment: AssignmentState) -> str | None:
    if assignment.holdout:
        return "in the holdout"
    if assignment.sampled_out:
        return "outside the campaign's sampling share"
    return None
