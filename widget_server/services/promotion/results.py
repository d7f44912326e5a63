"""A campaign's results as the API shows them, and the policy's decision: the one door to ``ab/``.

Figures come from the rollups (:mod:`.metrics`), statistics and the decision from ``ab/``; this
module only maps between the two and into JSON. The evaluator and the results endpoint call the
same :func:`evaluate`, so what the admin page shows is what the evaluator acts on.
"""

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select

from ...extensions import db
from ...models import Campaign, Decision, Event, Order, Site, StepReach
from ...models.types import utcnow
from ...vocabulary import AB_DEFAULTS, DEFAULT_GUARDRAILS
from ..campaigns import phases
from ..campaigns.strata import components
from ..platform.local_text import plain
from ..platform.plans import through_indexes
from . import metrics
from .metrics import StratumCount, VariantFigures


@dataclass(frozen=True)
class Outcome:
    """What the policy says now, the results JSON it is based on, and bandit weights if any."""

    action: str
    winner_variant_id: int | None
    reason: str
    snapshot: dict
    bandit_weights: dict[int, float] | None


def settings_of(campaign: Campaign) -> dict:
    ab = campaign.ab or {}
    settings = {**AB_DEFAULTS, **{k: v for k, v in ab.items() if v is not None}}
    if campaign.kind == "wheel" and "metric" not in ab:
        settings["metric"] = "spin"
    return settings


def guardrails_of(campaign: Campaign, reports_orders: bool) -> list[dict]:
    """The campaign's guardrail metrics: ``ab.guardrails`` when it names them (``[]`` for
    none), else :data:`~widget_server.vocabulary.DEFAULT_GUARDRAILS` on a site that reports
    orders (revenue per visitor and order rate), less the metric the test itself judges."""
    named = (campaign.ab or {}).get("guardrails")
    if named is not None:
        return [dict(g) for g in named]
    if not reports_orders:
        return []
    metric = settings_of(campaign)["metric"]
    return [dict(g) for g in DEFAULT_GUARDRAILS if g["metric"] != metric]


def judged_metrics(campaign: Campaign, reports_orders: bool) -> list[str]:
    """The metric the campaign's test judges and its guardrails' metrics."""
    guarded = [g["metric"] for g in guardrails_of(campaign, reports_orders)]
    return [settings_of(campaign)["metric"], *guarded]


def sites_reporting_orders(site_ids) -> set[int]:
    """The sites among ``site_ids`` whose shop has reported at least one order (one query, an
    index probe per site)."""
    site_ids = sorted(set(site_ids))
    if not site_ids:
        return set()
    reported = select(Order.id).where(Order.site_id == Site.id).exists()
    return set(db.session.scalars(select(Site.id).where(Site.id.in_(site_ids), reported)))


def _test_weights(campaign: Campaign) -> dict[int, float]:
    """The weights the test ran with: after a promotion, those saved in its Decision."""
    weights = {v.id: v.weight for v in campaign.variants}
    if campaign.promoted_variant_id is None:
        return weights
    previous = db.session.scalar(
        select(Decision.previous_weights)
        .where(
            Decision.campaign_id == campaign.id,
            Decision.action == "promote",
            Decision.undone_at.is_(None),
        )
        .order_by(Decision.id.desc())
        .limit(1)
    )
    return {**weights, **{int(k): float(w) for k, w in (previous or {}).items()}}


def _arms(
    campaign: Campaign,
    figures: dict[int, VariantFigures],
    weights,
    strata: dict[int, list[StratumCount]] | None = None,
) -> list:
    from ab import policy as ab_policy  # imported here: the app must start even if ab/ moves

    control_id = next((v.id for v in campaign.variants if v.is_control), campaign.variants[0].id)
    arms = []
    for variant in campaign.variants:
        f = figures.get(variant.id) or VariantFigures(variant.id, 0, 0, 0.0, 0.0)
        arms.append(
            ab_policy.Arm(
                variant_id=variant.id,
                visitors=f.visitors,
                conversions=f.conversions,
                value_sum=f.value_sum,
                value_sum_squares=f.value_sum_squares,
                weight=float(weights.get(variant.id, variant.weight)),
                is_control=variant.id == control_id,
                name=variant.name,
                strata=_strata((strata or {}).get(variant.id) or ()),
            )
        )
    return arms


def _strata(counts: list[StratumCount]) -> tuple:
    """The rollups' per-stratum counts as ``ab``'s figures, keyed by the stratum's components
    (visitor, device, source, stage) so that small strata merge along them."""
    from ab.stratification import StratumFigures

    return tuple(
        StratumFigures(components(c.stratum), c.visitors, c.value_sum, c.value_sum_squares)
        for c in counts
        if c.visitors
    )


def evaluate(
    campaign: Campaign,
    figures_by_metric: dict[str, dict[int, VariantFigures]],
    now: datetime,
    reweight: bool = False,
    strata_by_metric: dict[str, dict[int, list[StratumCount]]] | None = None,
    reports_orders: bool = False,
    phase: int | None = None,
) -> Outcome:
    """Run the policy of ``ab/`` on the campaign's current figures (and, with ``reweight``,
    Thompson sampling for a bandit's next weights).

    ``strata_by_metric`` (from :func:`metrics.stratum_figures`) lets the policy post-stratify;
    ``reports_orders`` says whether the campaign's site reports orders, which gives a campaign
    that names no guardrails the default ones (:func:`guardrails_of`). The figures are those of
    ``phase`` (the current one by default), and the running days count from its start.

    :raise ValueError: from ``ab/``, when the figures cannot be judged.
    """
    from ab import bandit as ab_bandit
    from ab import policy as ab_policy

    settings = settings_of(campaign)
    metric = settings["metric"]
    strata_by_metric = strata_by_metric or {}
    weights = _test_weights(campaign)
    arms = _arms(campaign, figures_by_metric[metric], weights, strata_by_metric.get(metric))
    guardrails = guardrails_of(campaign, reports_orders)
    guardrail_arms = {
        g["metric"]: _arms(campaign, figures_by_metric[g["metric"]], weights,
                           strata_by_metric.get(g["metric"]))
        for g in guardrails
    }  # fmt: skip
    phase = phase or campaign.phase
    started, ended = phases.phase_span(campaign, phase)
    running_days = max(((ended or now) - (started or now)).total_seconds() / 86400.0, 0.0)
    decision = ab_policy.decide(
        arms,
        metric=metric,
        method=settings["method"],
        alpha=float(settings["alpha"]),
        running_days=running_days,
        min_visitors_per_variant=int(settings["min_visitors_per_variant"]),
        min_running_days=float(settings["min_running_days"]),
        min_lift=float(settings["min_lift"]),
        max_duration_days=float(settings["max_duration_days"]),
        max_visitors_per_variant=int(settings["max_visitors_per_variant"]),
        adjustment=settings["adjustment"],
        guardrails=guardrails,
        guardrail_arms=guardrail_arms,
    )
    bandit_weights = None
    if reweight and settings["method"] == "bandit" and campaign.promoted_variant_id is None:
        bandit_weights = ab_bandit.thompson_weights(arms, metric)
    snapshot = _results_json(campaign, settings, arms, decision, weights, running_days)
    snapshot["phase"] = phase
    return Outcome(
        decision.action, decision.winner_variant_id, decision.reason, snapshot, bandit_weights
    )


def current_outcome(
    campaign: Campaign, now: datetime, figures_by_metric=None, phase: int | None = None
) -> Outcome:
    """:func:`evaluate` on the campaign's figures of ``phase`` (the current one by default) read
    now: totals, strata, and whether its site reports orders (three reads).

    :raise ValueError: from ``ab/``, when the figures cannot be judged.
    """
    phase = phase or campaign.phase
    if figures_by_metric is None:
        figures_by_metric = metrics.figures([campaign.id], {campaign.id: phase})[campaign.id]
    reports_orders = campaign.site_id in sites_reporting_orders([campaign.site_id])
    strata = metrics.stratum_figures(
        [campaign.id], judged_metrics(campaign, reports_orders), {campaign.id: phase}
    )
    return evaluate(
        campaign,
        figures_by_metric,
        now,
        strata_by_metric=strata[campaign.id],
        reports_orders=reports_orders,
        phase=phase,
    )


def _number(value):
    """JSON has no NaN or infinity: such a figure reads as null."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _results_json(campaign, settings, arms, decision, weights, running_days) -> dict:
    by_id = {r.variant_id: r for r in decision.arms}
    variants = []
    for variant, arm in zip(campaign.variants, arms, strict=True):
        figures = by_id[variant.id]
        variants.append(
            {
                "variant_id": variant.id,
                "name": variant.name,
                "is_control": arm.is_control,
                "weight": float(weights.get(variant.id, variant.weight)),
                "visitors": arm.visitors,
                "conversions": arm.conversions,
                "value_sum": arm.value_sum,
                "value_sum_squares": arm.value_sum_squares,
                "rate": _number(figures.rate),
                "ci": [_number(figures.ci[0]), _number(figures.ci[1])],
                "lift": _number(figures.lift),
                "lift_ci": [_number(figures.lift_ci[0]), _number(figures.lift_ci[1])],
                "p_value": _number(figures.p_value),
                "chance_to_beat_control": _number(figures.chance_to_beat_control),
                "adjusted": _adjusted_json(figures.adjusted),
            }
        )
    return {
        "campaign_id": campaign.id,
        "metric": settings["metric"],
        "method": settings["method"],
        "alpha": float(settings["alpha"]),
        "status": campaign.status,
        "promoted_variant_id": campaign.promoted_variant_id,
        "running_days": round(running_days, 4),
        "variants": variants,
        "srm": {"p_value": _number(decision.srm_p_value), "ok": bool(decision.srm_ok)},
        "adjustment": {
            "method": decision.adjustment.method,
            "used": decision.adjustment.used,
            "strata": decision.adjustment.strata,
            "note": decision.adjustment.note,
        },
        "guardrails": [_guardrail_json(g) for g in decision.guardrails],
        "decision": {
            "action": decision.action,
            "winner_variant_id": decision.winner_variant_id,
            "held_variant_id": decision.held_variant_id,
            "reason": decision.reason,
        },
    }


def _adjusted_json(adjusted) -> dict | None:
    """A variant's post-stratified figures (None without strata or with adjustment off)."""
    if adjusted is None:
        return None
    return {
        "rate": _number(adjusted.rate),
        "ci": [_number(adjusted.ci[0]), _number(adjusted.ci[1])],
        "lift": _number(adjusted.lift),
        "lift_ci": [_number(adjusted.lift_ci[0]), _number(adjusted.lift_ci[1])],
        "p_value": _number(adjusted.p_value),
        "variance_ratio": _number(adjusted.variance_ratio),
    }


def _guardrail_json(result) -> dict:
    return {
        "metric": result.metric,
        "variant_id": result.variant_id,
        "max_drop": result.max_drop,
        "lower_is_better": result.lower_is_better,
        "control_mean": _number(result.control_mean),
        "mean": _number(result.mean),
        "change": _number(result.change),
        "ci": [_number(result.ci[0]), _number(result.ci[1])],
        "p_value": _number(result.p_value),
        "harmed": result.harmed,
        "verdict": result.verdict,
        "adjusted": result.adjusted,
    }


def variants_without_visitors(campaign: Campaign, figures) -> list[str]:
    """Names of the campaign's variants no visitor has been exposed to (on its metric)."""
    by_variant = figures.get(settings_of(campaign)["metric"], {})
    return [v.name for v in campaign.variants if getattr(by_variant.get(v.id), "visitors", 0) == 0]


#: The decision's reason for a campaign that is not an A/B test (no variant, one variant).
_NOT_A_TEST = (
    "This campaign has no variant yet: add one to show it to visitors.",
    "One variant, so nothing to compare: add a second variant to A/B test it.",
)


def campaign_results(
    campaign: Campaign, with_series: bool = False, phase: int | None = None
) -> dict:
    """The results body of ``GET campaigns/<id>/results`` for one ``phase`` (the current one
    by default), plus daily ``series``; ``phases`` lists the campaign's phases.

    A campaign already decided (promoted, or stopped) in that phase shows that decision, not the
    policy's view of the figures since.
    """
    now = utcnow()
    phase = phase or campaign.phase
    if with_series:
        figures, series = metrics.figures_and_series(
            campaign.id, settings_of(campaign)["metric"], phase
        )
    else:
        figures, series = metrics.figures([campaign.id], {campaign.id: phase})[campaign.id], []
    unseen = variants_without_visitors(campaign, figures)
    if len(campaign.variants) < 2:
        body = _counts_only(campaign, figures, _NOT_A_TEST[min(len(campaign.variants), 1)])
    elif unseen:
        names = " and ".join(", ".join(unseen).rsplit(", ", 1))
        noun, verb = ("variant", "has") if len(unseen) == 1 else ("variants", "have")
        body = _counts_only(
            campaign, figures, f"Waiting for visitors: {noun} {names} {verb} none yet."
        )
    else:
        try:
            body = current_outcome(campaign, now, figures, phase).snapshot
        except ValueError as err:  # ab/ cannot judge these figures yet (e.g. no visitors)
            body = _counts_only(campaign, figures, f"Not enough data to judge yet: {err}.")
    for row in body["variants"]:
        row["teaser"] = _teaser_figures(figures, row["variant_id"])
    body["phase"] = phase
    body["phases"] = phases.phases_of(campaign)
    taken = _standing_decision(campaign)
    if taken is not None and taken.phase == phase:
        body["decision"] = {
            "action": taken.action,
            "winner_variant_id": taken.winner_variant_id,
            "held_variant_id": None,
            "reason": taken.reason,
        }
        # The test ended with the decision: visitors since follow the winner's weight of 1, so
        # the sample-ratio check is the one the decision was taken on, not a mismatch by design.
        srm = (taken.snapshot or {}).get("srm")
        if srm is not None:
            body["srm"] = srm
    if with_series:
        body["drop_off"] = drop_off(campaign, figures, phase)
        body["series"] = [
            {
                "day": p.day.isoformat(),
                "variant_id": p.variant_id,
                "visitors": p.visitors,
                "conversions": p.conversions,
                "value_sum": p.value_sum,
            }
            for p in series
        ]
    body["applied_through"] = applied_through(campaign.site_id, now).isoformat()
    return body


def drop_off(campaign: Campaign, figures_by_metric, phase: int = 1) -> list[dict]:
    """Per survey variant: the visitors shown it, the responses that answered each step (in the
    variant's step order), and the visitors who completed it; from the rollups (``step_reach``,
    ``variant_metrics``), no response read. Responses count once per round of a recurring
    survey; shown and completed count each visitor once."""
    if campaign.kind != "survey":
        return []
    rows = db.session.execute(
        select(StepReach.variant_id, StepReach.step_id, StepReach.responses).where(
            StepReach.campaign_id == campaign.id, StepReach.phase == phase
        )
    )
    reached = {(variant_id, step_id): count for variant_id, step_id, count in rows}
    # Every metric's figures carry the exposed visitors; completion's also the completions.
    completion = figures_by_metric.get("completion", {})
    none = VariantFigures(0, 0, 0, 0.0, 0.0)
    return [
        {
            "variant_id": variant.id,
            "name": variant.name,
            "shown": completion.get(variant.id, none).visitors,
            "steps": [
                {
                    "step_id": step["id"],
                    "question": plain(step.get("question")),
                    "responses": reached.get((variant.id, step["id"]), 0),
                }
                for step in (variant.content or {}).get("steps") or []
            ],
            "completed": completion.get(variant.id, none).conversions,
        }
        for variant in campaign.variants
    ]


def _teaser_figures(figures_by_metric, variant_id: int) -> dict:
    """Visitors who saw the teaser's tab and who reopened the popup with it (each once).

    Reported beside the test, never judged by it: a reopening is the visitor's own choice, not
    an impression, so the A/B figures stay those of the popups shown by their trigger.
    """
    counts = {}
    for name, metric in (("shown", "teaser_shown"), ("opened", "teaser_open")):
        found = figures_by_metric.get(metric, {}).get(variant_id)
        counts[name] = found.conversions if found is not None else 0
    return counts


OLDEST_PENDING = select(func.min(Event.received_at)).where(
    Event.site_id == bindparam("site_id"), Event.pending
)


def applied_through(site_id: int, now: datetime) -> datetime:
    """Every event of the site received before this time is in the figures: the oldest pending
    event's receive time, or now when the applier has caught up."""
    with through_indexes() as connection:
        oldest = connection.execute(OLDEST_PENDING, {"site_id": site_id}).scalar()
    return oldest or now


def _counts_only(campaign: Campaign, figures_by_metric, reason: str) -> dict:
    """The results body without statistics, for figures ``ab/`` refuses to judge."""
    settings = settings_of(campaign)
    figures = figures_by_metric[settings["metric"]]
    weights = _test_weights(campaign)
    control_id = next((v.id for v in campaign.variants if v.is_control), None)
    if control_id is None and campaign.variants:
        control_id = campaign.variants[0].id
    variants = []
    for variant in campaign.variants:
        f = figures.get(variant.id) or VariantFigures(variant.id, 0, 0, 0.0, 0.0)
        variants.append(
            {
                "variant_id": variant.id,
                "name": variant.name,
                "is_control": variant.id == control_id,
                "weight": float(weights.get(variant.id, variant.weight)),
                "visitors": f.visitors,
                "conversions": f.conversions,
                "value_sum": f.value_sum,
                "value_sum_squares": f.value_sum_squares,
                "rate": f.value_sum / f.visitors if f.visitors else None,
                "ci": [None, None],
                "lift": None,
                "lift_ci": [None, None],
                "p_value": None,
                "chance_to_beat_control": None,
                "adjusted": None,
            }
        )
    return {
        "campaign_id": campaign.id,
        "metric": settings["metric"],
        "method": settings["method"],
        "alpha": float(settings["alpha"]),
        "status": campaign.status,
        "promoted_variant_id": campaign.promoted_variant_id,
        "variants": variants,
        "srm": {"p_value": None, "ok": True},
        "adjustment": {
            "method": settings["adjustment"],
            "used": False,
            "strata": 0,
            "note": "nothing to judge yet",
        },
        "guardrails": [],
        "decision": {
            "action": "continue",
            "winner_variant_id": None,
            "held_variant_id": None,
            "reason": reason,
        },
    }


def _standing_decision(campaign: Campaign) -> Decision | None:
    if campaign.promoted_variant_id is None and campaign.status != "completed":
        return None
    return latest_standing_decision(campaign.id)


def latest_standing_decision(campaign_id: int) -> Decision | None:
    """The campaign's latest promotion or stop that was not undone."""
    return db.session.scalar(
        select(Decision)
        .where(
            Decision.campaign_id == campaign_id,
            Decision.action.in_(("promote", "stop")),
            Decision.undone_at.is_(None),
        )
        .order_by(Decision.id.desc())
        .limit(1)
    )
