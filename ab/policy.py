"""The promotion policy: from a campaign's numbers, its settings and the time, to a decision.

:func:`evaluate` (or :func:`decide`, the keyword form the service calls) is one pure function:
continue, promote variant X, hold (a guardrail metric is harmed), or stop and keep the control,
with the reason in words and every figure behind it. It is also how the results page gets its
statistics, whatever the method.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime

import numpy as np

from . import bayes, guardrails, sequential, stats, stratification
from .guardrails import Guardrail, GuardrailResult
from .stratification import StratumFigures

__all__ = [
    "METHODS",
    "METRICS",
    "MEAN_METRICS",
    "ADJUSTMENTS",
    "ACTIONS",
    "Arm",
    "Guardrail",
    "StratumFigures",
    "CampaignNumbers",
    "Settings",
    "ArmResult",
    "AdjustedResult",
    "Adjustment",
    "Decision",
    "evaluate",
    "judge",
    "decide",
]

#: ``sequential`` (default, alpha spending), ``msprt`` (always-valid mixture SPRT), ``fixed``
#: (fixed horizon), ``bayesian`` (chance to beat control), ``bandit`` (Thompson sampling).
METHODS = ("sequential", "msprt", "fixed", "bayesian", "bandit")
#: What a campaign can be judged on, the one list the API schema and the metrics service read:
#: each a 0/1 conversion per visitor, but for :data:`MEAN_METRICS`.
METRICS = ("completion", "spin", "claim", "email_capture", "coupon_redemption", "revenue")
#: Metrics whose per-visitor values are amounts (Welch, Normal posteriors), not 0/1 conversions.
MEAN_METRICS = frozenset({"revenue"})
#: ``post_stratification`` (default): the frequentist methods compare variants within strata of
#: what was known before the popup (:mod:`ab.stratification`); ``none``: raw figures only.
ADJUSTMENTS = ("post_stratification", "none")
#: What a decision says: keep testing, promote the winner, hold it (a guardrail metric is
#: significantly harmed), or stop and keep the control.
ACTIONS = ("continue", "promote", "hold", "stop")
#: The methods whose tests use post-stratified figures when there are strata.
_ADJUSTED_METHODS = frozenset({"sequential", "msprt", "fixed"})


@dataclass(frozen=True)
class Arm:
    """One variant's figures: visitors and conversions, or for revenue per visitor the visitors
    (``n``), ``value_sum`` and ``value_sum_squares``; its configured traffic weight.

    ``strata`` optionally splits the same figures by stratum of pre-exposure covariates
    (:class:`~ab.stratification.StratumFigures`, ``value_sum`` = conversions for a 0/1 metric);
    they must add up to the arm's visitors and values.
    """

    variant_id: int
    visitors: int
    conversions: int = 0
    value_sum: float = 0.0
    value_sum_squares: float = 0.0
    weight: float = 1.0
    is_control: bool = False
    name: str | None = None
    strata: tuple[StratumFigures, ...] = ()


@dataclass(frozen=True)
class CampaignNumbers:
    """A campaign's arms (exactly one control) and when its test started."""

    arms: tuple[Arm, ...]
    started_at: datetime


@dataclass(frozen=True)
class Settings:
    """A campaign's A/B settings (SPEC §6).

    Attributes
    ----------
    method : str
        One of :data:`METHODS`.
    metric : str
        One of :data:`METRICS`: ``"revenue"`` is judged as a mean per visitor; any other metric
        as a conversion rate.
    alpha : float
        Family-wise false-positive rate (after Holm's correction across variants).
    min_visitors_per_variant, min_running_days : guardrails before any promotion.
    min_lift : float
        Minimum relative lift of the winner's point estimate (0.02 = +2%).
    max_duration_days : float
        After this the test stops and keeps the control if nothing was promoted.
    max_visitors_per_variant : int
        The planned maximum of the sequential design (its tuning parameter) and the horizon of
        the fixed one; the test stops when every variant reaches it, or (``sequential``) when
        any comparison reaches the information of that many visitors in each of two equal
        groups, which unequal weights reach sooner.
    srm_threshold : float
        A sample-ratio-mismatch p-value below this blocks promotion.
    msprt_tau : float
        Mixture standard deviation of the ``msprt`` method, relative to the pooled mean.
    max_expected_loss : float
        Bayesian guardrail: the winner's expected loss, relative to the control's mean.
    guardrails : tuple of :class:`~ab.guardrails.Guardrail` (or ``{"metric", "max_drop"}``)
        Guardrail metrics: a variant significantly worse than the control on one of them is
        not promoted (:func:`judge` takes their figures as ``guardrail_arms``).
    adjustment : str
        One of :data:`ADJUSTMENTS`.
    min_stratum_visitors : int
        Post-stratification keeps a stratum on its own from this many visitors in every arm.
    """

    method: str = "sequential"
    metric: str = "completion"
    alpha: float = 0.05
    min_visitors_per_variant: int = 500
    min_running_days: float = 7.0
    min_lift: float = 0.0
    max_duration_days: float = 60.0
    max_visitors_per_variant: int = 20_000
    srm_threshold: float = 0.001
    msprt_tau: float = 0.1
    max_expected_loss: float = 0.01
    guardrails: tuple[Guardrail, ...] = ()
    adjustment: str = "post_stratification"
    min_stratum_visitors: int = stratification.MIN_STRATUM_VISITORS

    def __post_init__(self):
        given = self.guardrails if self.guardrails is not None else ()
        if isinstance(given, (str, bytes, dict)) or not isinstance(given, Sequence):
            raise ValueError(f"guardrails must be a list of guardrails, got {given!r}")
        converted = tuple(
            g if isinstance(g, Guardrail) else Guardrail(**_guardrail_fields(g)) for g in given
        )
        metrics = [g.metric for g in converted]
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"guardrails: each metric at most once, got {metrics}")
        object.__setattr__(self, "guardrails", converted)
        if self.adjustment not in ADJUSTMENTS:
            raise ValueError(
                f"adjustment must be one of {', '.join(ADJUSTMENTS)}, got {self.adjustment!r}"
            )
        stats.check_count(self.min_stratum_visitors, "min_stratum_visitors", "settings")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        for name in ("alpha", "srm_threshold"):
            stats.check_alpha(getattr(self, name), name)
        for name in (
            "min_visitors_per_variant",
            "min_running_days",
            "min_lift",
            "max_duration_days",
            "msprt_tau",
            "max_expected_loss",
        ):
            value = getattr(self, name)
            if not (stats.is_real(value) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        planned = self.max_visitors_per_variant
        if not (stats.is_real(planned) and math.isfinite(planned) and planned > 0):
            raise ValueError(
                f"max_visitors_per_variant must be a finite number > 0, got {planned!r}"
            )


@dataclass(frozen=True)
class AdjustedResult:
    """A variant's post-stratified figures (:mod:`ab.stratification`), beside the raw ones.

    ``rate`` is the mean standardised to all visitors' strata, ``ci`` its interval; against the
    control, ``lift``/``lift_ci`` and the method's p-values (``p_value`` after Holm's correction,
    ``raw_p_value`` before), and ``variance_ratio``, the variance of the adjusted difference
    over the raw one (0.8: the strata explain a fifth of the noise).
    """

    rate: float | None
    ci: tuple[float | None, float | None]
    lift: float | None = None
    lift_ci: tuple[float | None, float | None] = (None, None)
    p_value: float | None = None
    raw_p_value: float | None = None
    variance_ratio: float | None = None

    def as_dict(self) -> dict:
        result = asdict(self)
        result["ci"] = list(self.ci)
        result["lift_ci"] = list(self.lift_ci)
        return result


@dataclass(frozen=True)
class Adjustment:
    """Whether the decision rests on post-stratified figures (``used``), over how many strata
    after small ones were merged, and if not, why (``note``)."""

    method: str
    used: bool
    strata: int
    note: str | None = None


@dataclass(frozen=True)
class ArmResult:
    """One variant's figures as the results API shows them (SPEC §4); every float is finite or
    ``None``.

    ``p_value`` is the method's p-value against the control after Holm's correction (the one
    compared with alpha); ``raw_p_value`` before it. Both are ``None`` for the control, and so
    are ``lift`` and ``chance_to_beat_control``.
    """

    variant_id: int
    name: str | None
    is_control: bool
    weight: float
    visitors: int
    conversions: int
    rate: float | None
    ci: tuple[float | None, float | None]
    lift: float | None = None
    lift_ci: tuple[float | None, float | None] = (None, None)
    p_value: float | None = None
    raw_p_value: float | None = None
    chance_to_beat_control: float | None = None
    expected_loss: float | None = None
    adjusted: AdjustedResult | None = None

    def as_dict(self) -> dict:
        result = asdict(self)
        result["ci"] = list(self.ci)
        result["lift_ci"] = list(self.lift_ci)
        result["adjusted"] = None if self.adjusted is None else self.adjusted.as_dict()
        return result


@dataclass(frozen=True)
class Decision:
    """What to do now, why, and the figures it rests on.

    ``action`` is one of :data:`ACTIONS`; for ``hold``, ``winner_variant_id`` is ``None`` and
    ``held_variant_id`` names the variant that would have been promoted. ``guardrails`` has one
    result per variant (not the control) and guardrail metric.
    """

    action: str
    winner_variant_id: int | None
    winner_index: int | None
    reason: str
    method: str
    metric: str
    alpha: float
    arms: tuple[ArmResult, ...]
    srm_p_value: float | None
    srm_ok: bool
    running_days: float
    guardrails: tuple[GuardrailResult, ...] = ()
    held_variant_id: int | None = None
    adjustment: Adjustment = Adjustment("none", False, 1)

    def as_dict(self) -> dict:
        """JSON-ready: the per-variant names of SPEC §4 under ``variants``."""
        nested = ("arms", "guardrails", "adjustment")
        result = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in nested}
        result["variants"] = [arm.as_dict() for arm in self.arms]
        result["srm"] = {"p_value": self.srm_p_value, "ok": self.srm_ok}
        result["guardrails"] = [g.as_dict() for g in self.guardrails]
        result["adjustment"] = asdict(self.adjustment)
        return result


def evaluate(
    campaign: CampaignNumbers,
    settings: Settings,
    now: datetime,
    guardrail_arms: Mapping[str, Sequence[Arm]] | None = None,
) -> Decision:
    """Decide on ``campaign`` at time ``now`` (timezone-aware or naive like ``started_at``).

    Raises
    ------
    ValueError
        On bad figures: fewer than two variants, not exactly one control, negative counts,
        conversions above visitors, a variant without visitors (or, for revenue, under 2).
    """
    running_days = max((now - campaign.started_at).total_seconds() / 86_400.0, 0.0)
    return judge(campaign.arms, settings, running_days, guardrail_arms)


def decide(
    arms: Sequence[Arm],
    *,
    running_days: float,
    guardrail_arms: Mapping[str, Sequence[Arm]] | None = None,
    **settings,
) -> Decision:
    """Keyword form of :func:`judge`: ``decide(arms, running_days=3.5, method="fixed", ...)``."""
    return judge(arms, Settings(**settings), running_days, guardrail_arms)


@dataclass(frozen=True)
class _Comparison:
    index: int
    difference: float
    z: float
    raw_p: float
    method_p: float
    lift: stats.IntervalResult
    bayes: bayes.Comparison
    information: float  # the sequential design's information fraction t (1 = planned maximum)
    #: Raw variance over the variance compared (post-stratification's gain; 1 for raw figures).
    efficiency: float = 1.0


def judge(
    arms: Sequence[Arm],
    settings: Settings,
    running_days: float,
    guardrail_arms: Mapping[str, Sequence[Arm]] | None = None,
) -> Decision:
    """The policy: statistics for every variant, then continue, promote, hold, or stop.

    Parameters
    ----------
    arms : sequence of Arm
        The variants' figures on the campaign's metric, exactly one the control.
    settings : Settings
    running_days : float
        Days since the test started.
    guardrail_arms : mapping of metric to sequence of Arm, optional
        For each of ``settings.guardrails``, the same variants' figures on that metric.

    Notes
    -----
    Each variant is compared with the control by the method's test; the p-values are corrected
    with Holm's procedure, so the chance of promoting any variant that is no better than the
    control stays at most alpha (for ``sequential`` and ``msprt`` under continuous monitoring).
    A variant is promoted when it is significant *and ahead*, the best such variant by its
    rate, and every guardrail holds: all variants have ``min_visitors_per_variant``, the test
    has run ``min_running_days``, the SRM check passes and the lift is at least ``min_lift``.
    ``fixed`` decides only at its horizon (``max_visitors_per_variant`` in every variant, or
    ``max_duration_days``). ``bayesian`` and ``bandit`` promote on chance to beat control
    >= 1 - alpha with an expected loss under ``max_expected_loss`` of the control's mean; they do
    not control the false-positive rate under repeated looks. At ``max_duration_days``, once
    every variant has ``max_visitors_per_variant``, or (``sequential``) once any comparison
    reaches the design's planned information, a test without a winner stops and keeps the
    control. SRM is not checked for bandits, whose weights move by design.

    Guardrail metrics (:mod:`ab.guardrails`): a significant variant that is significantly worse
    than the control on one of them, by the always-valid one-sided test, is not promoted; when
    every significant variant is, the decision is ``hold`` and says why. Harm detection only
    ever blocks, so the false-positive rate above is untouched.

    With arms that carry ``strata`` and ``adjustment`` ``post_stratification``, the
    frequentist methods test the post-stratified difference (:mod:`ab.stratification`), and
    the sequential design's information fraction grows by the variance it saves: the design
    reaches the information of its planned maximum with fewer visitors. The Bayesian methods
    keep the raw figures; the adjusted ones are reported beside them either way.
    """
    if not (stats.is_real(running_days) and math.isfinite(running_days) and running_days >= 0):
        raise ValueError(f"running_days must be a finite number >= 0, got {running_days!r}")
    control_index = _validate(arms, settings)
    guard_figures = _guardrail_figures(arms, settings, guardrail_arms)
    is_mean = settings.metric in MEAN_METRICS
    estimates = [_estimate(arm, is_mean, settings.alpha) for arm in arms]
    control = arms[control_index]
    comparisons = [
        _compare(i, arm, control, estimates[i], estimates[control_index], is_mean, settings)
        for i, arm in enumerate(arms)
        if i != control_index
    ]
    raw_holm = _holm(comparisons)
    adjustment, adjusted, adjusted_estimates = _adjust(arms, control_index, comparisons,
                                                       is_mean, settings)  # fmt: skip
    adjusted_holm = _holm(list(adjusted.values()))
    basis = [adjusted[c.index] for c in comparisons] if adjustment.used else comparisons
    by_index = adjusted_holm if adjustment.used else raw_holm
    if settings.method == "bandit":
        srm_p, srm_ok = None, True
    else:
        srm_p = stats.srm_test([a.visitors for a in arms], [float(a.weight) for a in arms])
        srm_ok = srm_p >= settings.srm_threshold
    guardrail_results = _guardrails(arms, control_index, guard_figures, settings)
    harmed: dict[int, list[GuardrailResult]] = {}
    index_of = {arm.variant_id: i for i, arm in enumerate(arms)}
    for result in guardrail_results:
        if result.harmed:
            harmed.setdefault(index_of[result.variant_id], []).append(result)
    results = tuple(
        _arm_result(arm, estimates[i], next((c for c in comparisons if c.index == i), None),
                    raw_holm.get(i),
                    _adjusted_result(i, adjusted_estimates, adjusted, adjusted_holm,
                                     settings.alpha))
        for i, arm in enumerate(arms)
    )  # fmt: skip
    action, winner, reason, held = _choose(arms, basis, by_index, estimates, settings,
                                           running_days, srm_p, srm_ok, harmed)  # fmt: skip
    return Decision(
        action=action,
        winner_variant_id=None if winner is None else arms[winner].variant_id,
        winner_index=winner,
        reason=reason,
        method=settings.method,
        metric=settings.metric,
        alpha=float(settings.alpha),
        arms=results,
        srm_p_value=_finite(srm_p),
        srm_ok=bool(srm_ok),
        running_days=float(running_days),
        guardrails=tuple(guardrail_results),
        held_variant_id=None if held is None else arms[held].variant_id,
        adjustment=adjustment,
    )


def _holm(comparisons) -> dict[int, float]:
    adjusted = stats.holm([c.method_p for c in comparisons])
    return dict(zip((c.index for c in comparisons), adjusted, strict=True))


def _guardrail_figures(arms, settings, guardrail_arms) -> dict[str, list[Arm]]:
    """Each guardrail's arms in the order of ``arms``, checked."""
    given = dict(guardrail_arms or {})
    figures = {}
    ids = [arm.variant_id for arm in arms]
    for guardrail in settings.guardrails:
        metric = guardrail.metric
        if metric not in given:
            raise ValueError(f"guardrail_arms: no figures for the guardrail {metric!r}")
        by_id = {arm.variant_id: arm for arm in given[metric]}
        if sorted(by_id) != sorted(ids) or len(by_id) != len(given[metric]):
            raise ValueError(f"guardrail_arms[{metric!r}]: need one arm per variant {ids}")
        ordered = [by_id[i] for i in ids]
        for arm in ordered:
            name = f"guardrail {metric}, variant {arm.variant_id}"
            stats.check_counts(arm.visitors, arm.conversions, name)
            for label in ("value_sum", "value_sum_squares"):
                value = getattr(arm, label)
                if not (stats.is_real(value) and math.isfinite(value) and value >= 0):
                    raise ValueError(f"{name}: {label} must be a finite number >= 0")
        figures[metric] = ordered
    return figures


def _guardrails(arms, control_index, figures, settings) -> list[GuardrailResult]:
    """Every variant's guardrails against the control, variant by variant."""
    results = []
    stratified = settings.adjustment != "none"
    for i, arm in enumerate(arms):
        if i == control_index:
            continue
        t = float(sequential.information_fraction(
            arm.visitors, arms[control_index].visitors, settings.max_visitors_per_variant
        ))  # fmt: skip
        for guardrail in settings.guardrails:
            mine, control = figures[guardrail.metric][i], figures[guardrail.metric][control_index]
            both = stratified and bool(mine.strata) and bool(control.strata)
            if both:
                _check_strata(mine, guardrail.metric not in MEAN_METRICS, guardrail.metric)
                _check_strata(control, guardrail.metric not in MEAN_METRICS, guardrail.metric)
            results.append(
                guardrails.judge_guardrail(
                    guardrail,
                    (mine.visitors, mine.value_sum, mine.value_sum_squares),
                    (control.visitors, control.value_sum, control.value_sum_squares),
                    arm.variant_id,
                    settings.alpha,
                    t,
                    mine.strata if both else (),
                    control.strata if both else (),
                    settings.min_stratum_visitors,
                )
            )
    return results


def _check_strata(arm: Arm, binary: bool, metric: str) -> None:
    """The strata must add up to the arm: the same visitors, conversions or values."""
    name = f"variant {arm.variant_id} ({metric})"
    visitors = sum(s.visitors for s in arm.strata)
    if visitors != arm.visitors:
        raise ValueError(f"{name}: its strata add up to {visitors} visitors, not {arm.visitors}")
    total = sum(float(s.value_sum) for s in arm.strata)
    expected = float(arm.conversions if binary else arm.value_sum)
    if not math.isclose(total, expected, rel_tol=1e-9, abs_tol=1e-6):
        raise ValueError(f"{name}: its strata add up to {total:g}, not {expected:g}")


def _adjust(arms, control_index, comparisons, is_mean, settings):
    """Post-stratified comparisons: ``(Adjustment, {index: _Comparison}, [(mean, variance)])``;
    empty without strata or with too few visitors per stratum to keep two."""
    if settings.adjustment == "none":
        return Adjustment("none", False, 1), {}, []
    if not all(arm.strata for arm in arms):
        return Adjustment(settings.adjustment, False, 1, "no strata were recorded"), {}, []
    for arm in arms:
        _check_strata(arm, not is_mean, settings.metric)
    collapsed = stratification.collapse_figures(
        [arm.strata for arm in arms], settings.min_stratum_visitors
    )
    if collapsed.strata < 2:
        note = (
            f"every stratum but one has fewer than {settings.min_stratum_visitors} visitors "
            "in some variant yet"
        )
        return Adjustment(settings.adjustment, False, collapsed.strata, note), {}, []
    binary = not is_mean
    cells = (collapsed.visitors, collapsed.sums, collapsed.squares)
    raw_cells = tuple(np.array([[float(getattr(a, f))] for a in arms])
                      for f in ("visitors", "value_sum", "value_sum_squares"))  # fmt: skip
    if binary:
        raw_cells = (raw_cells[0], *(np.array([[float(a.conversions)] for a in arms]),) * 2)
    means, variances = stratification.stratified_means(*cells, binary)
    estimates = [(float(m), float(v)) for m, v in zip(means, variances, strict=True)]
    adjusted = {}
    exact = False
    for raw in comparisons:
        i, arm, control = raw.index, arms[raw.index], arms[control_index]
        if binary:
            exact |= stats.needs_exact_test(arm.conversions, arm.visitors, control.conversions,
                                            control.visitors)  # fmt: skip
        difference, variance = (float(x) for x in stratification.contrast(
            *cells, i, control_index, binary, pooled=binary))  # fmt: skip
        _, raw_variance = stratification.contrast(*raw_cells, i, control_index, binary,
                                                  pooled=binary)  # fmt: skip
        if variance > 0:
            z = difference / math.sqrt(variance)
        else:
            z = 0.0 if difference == 0 else math.copysign(1e6, difference)
        efficiency = float(raw_variance) / variance if variance > 0 and raw_variance > 0 else 1.0
        t = raw.information * efficiency
        fixed_p = min(2 * stats.normal_sf(abs(z)), 1.0)
        if settings.method == "sequential":
            method_p = max(sequential.spending_pvalue(z, t), fixed_p)
        elif settings.method == "msprt":
            pooled = (arm.value_sum + control.value_sum) if is_mean else (
                arm.conversions + control.conversions)  # fmt: skip
            tau = settings.msprt_tau * abs(pooled / (arm.visitors + control.visitors))
            method_p = max(sequential.msprt_pvalue(difference, variance, tau), fixed_p)
        else:
            method_p = fixed_p
        (mean, mean_variance), (control_mean, control_variance) = (
            estimates[i], estimates[control_index])  # fmt: skip
        lift = stats.relative_lift(mean, mean_variance, control_mean, control_variance,
                                   settings.alpha)  # fmt: skip
        adjusted[i] = _Comparison(i, difference, z, fixed_p, method_p, lift, raw.bayes, t,
                                  efficiency)  # fmt: skip
    note = None
    if settings.method not in _ADJUSTED_METHODS:
        note = f"the {settings.method} method judges the raw figures"
    elif exact:
        note = "counts too small for a normal test: the exact test on raw figures decides"
    used = note is None
    return Adjustment(settings.adjustment, used, collapsed.strata, note), adjusted, estimates


def _adjusted_result(index, estimates, comparisons, holm, alpha) -> AdjustedResult | None:
    if not estimates:
        return None
    mean, variance = estimates[index]
    half = stats.normal_quantile(1 - alpha / 2) * math.sqrt(max(variance, 0.0))
    comparison = comparisons.get(index)
    if comparison is None:
        return AdjustedResult(_finite(mean), (_finite(mean - half), _finite(mean + half)))
    return AdjustedResult(
        rate=_finite(mean),
        ci=(_finite(mean - half), _finite(mean + half)),
        lift=_finite(comparison.lift.estimate),
        lift_ci=(_finite(comparison.lift.lower), _finite(comparison.lift.upper)),
        p_value=_finite(holm.get(index)),
        raw_p_value=_finite(comparison.method_p),
        variance_ratio=_finite(1.0 / comparison.efficiency) if comparison.efficiency else None,
    )


@dataclass(frozen=True)
class _Estimate:
    mean: float
    variance_of_mean: float
    ci: tuple[float, float]
    moments: stats.Moments | None


def _validate(arms: Sequence[Arm], settings: Settings) -> int:
    if len(arms) < 2:
        raise ValueError(f"arms: an A/B test needs at least 2 variants, got {len(arms)}")
    controls = [i for i, arm in enumerate(arms) if arm.is_control]
    if len(controls) != 1:
        raise ValueError(f"arms: exactly one variant must be the control, got {len(controls)}")
    seen = set()
    for arm in arms:
        name = f"variant {arm.variant_id}"
        if arm.variant_id in seen:
            raise ValueError(f"arms: variant id {arm.variant_id!r} appears twice")
        seen.add(arm.variant_id)
        stats.check_counts(arm.visitors, arm.conversions, name)
        if arm.visitors == 0:
            raise ValueError(f"{name}: has no visitors yet")
        if not (math.isfinite(arm.weight) and arm.weight >= 0):
            raise ValueError(f"{name}: weight must be finite and >= 0, got {arm.weight!r}")
        if settings.metric in MEAN_METRICS:
            stats.check_moments(_moments(arm), name)
    if sum(arm.weight for arm in arms) <= 0:
        raise ValueError("arms: at least one weight must be above 0")
    return controls[0]


def _guardrail_fields(given) -> dict:
    """A guardrail given as a mapping: ``{"metric": ..., "max_drop": ...}``."""
    if not isinstance(given, Mapping):
        raise ValueError(f"guardrails: each guardrail needs a metric, got {given!r}")
    unknown = sorted(set(given) - {"metric", "max_drop"})
    if unknown:
        raise ValueError(f"guardrails: unknown field {unknown[0]!r}")
    max_drop = given.get("max_drop")
    return {"metric": given.get("metric"), "max_drop": 0.0 if max_drop is None else max_drop}


def _moments(arm: Arm) -> stats.Moments:
    return stats.Moments(arm.visitors, float(arm.value_sum), float(arm.value_sum_squares))


def _estimate(arm: Arm, is_mean: bool, alpha: float) -> _Estimate:
    if is_mean:
        moments = _moments(arm)
        return _Estimate(
            moments.mean, moments.variance / moments.n, stats.mean_interval(moments, alpha), moments
        )
    rate = arm.conversions / arm.visitors
    return _Estimate(
        rate,
        rate * (1 - rate) / arm.visitors,
        stats.wilson_interval(arm.conversions, arm.visitors, alpha),
        None,
    )


def _compare(index, arm, control, estimate, control_estimate, is_mean, settings) -> _Comparison:
    difference = estimate.mean - control_estimate.mean
    if is_mean:
        test = stats.welch_ttest(estimate.moments, control_estimate.moments)
        variance = estimate.variance_of_mean + control_estimate.variance_of_mean
        z = test.statistic if test.statistic is not None else math.copysign(1e6, difference)
        pooled_mean = (arm.value_sum + control.value_sum) / (arm.visitors + control.visitors)
        comparison = bayes.normal_comparison(
            estimate.mean,
            estimate.variance_of_mean,
            control_estimate.mean,
            control_estimate.variance_of_mean,
        )
    else:
        counts = (arm.conversions, arm.visitors, control.conversions, control.visitors)
        z_test = stats.two_proportion_ztest(*counts)
        test = stats.fisher_exact_test(*counts) if stats.needs_exact_test(*counts) else z_test
        z = z_test.statistic
        pooled_mean = (arm.conversions + control.conversions) / (arm.visitors + control.visitors)
        variance = pooled_mean * (1 - pooled_mean) * (1 / arm.visitors + 1 / control.visitors)
        comparison = bayes.beta_comparison(*counts)
    t = float(
        sequential.information_fraction(
            arm.visitors, control.visitors, settings.max_visitors_per_variant
        )
    )
    if settings.method == "sequential":
        method_p = max(sequential.spending_pvalue(z, t), test.p_value)
    elif settings.method == "msprt":
        tau = settings.msprt_tau * abs(pooled_mean)
        method_p = max(sequential.msprt_pvalue(difference, variance, tau), test.p_value)
    else:
        method_p = test.p_value
    lift = stats.relative_lift(
        estimate.mean,
        estimate.variance_of_mean,
        control_estimate.mean,
        control_estimate.variance_of_mean,
        settings.alpha,
    )
    return _Comparison(index, difference, z, test.p_value, method_p, lift, comparison, t)


def _arm_result(arm, estimate, comparison, adjusted_p, adjusted_figures) -> ArmResult:
    common = dict(
        variant_id=arm.variant_id,
        name=arm.name,
        is_control=arm.is_control,
        weight=float(arm.weight),
        visitors=int(arm.visitors),
        conversions=int(arm.conversions),
        rate=_finite(estimate.mean),
        ci=(_finite(estimate.ci[0]), _finite(estimate.ci[1])),
        adjusted=adjusted_figures,
    )
    if comparison is None:
        return ArmResult(**common)
    return ArmResult(
        **common,
        lift=_finite(comparison.lift.estimate),
        lift_ci=(_finite(comparison.lift.lower), _finite(comparison.lift.upper)),
        p_value=_finite(adjusted_p),
        raw_p_value=_finite(comparison.method_p),
        chance_to_beat_control=_finite(comparison.bayes.chance_to_beat_control),
        expected_loss=_finite(comparison.bayes.expected_loss),
    )


def _choose(arms, comparisons, adjusted, estimates, settings, running_days, srm_p, srm_ok,
            harmed):  # fmt: skip
    """(action, winner index or None, reason, held index or None)."""
    label = {c.index: _label(arms[c.index]) for c in comparisons}
    fewest = int(min(arm.visitors for arm in arms))  # counts were checked to be whole
    out_of_time = running_days >= settings.max_duration_days
    # The sequential design is spent once any comparison reaches its planned information
    # (t = 1): beyond it its p-value is the fixed-horizon one, which repeated looks would
    # inflate. With equal weights that is when every variant has the planned maximum; with
    # unequal weights (a 1:3 split reaches t = 1 at 13,334 / 40,000) it comes sooner.
    information_done = settings.method == "sequential" and any(
        c.information >= 1.0 for c in comparisons
    )
    design_done = fewest >= settings.max_visitors_per_variant or information_done
    at_horizon = out_of_time or design_done
    control_mean = next(e.mean for a, e in zip(arms, estimates, strict=True) if a.is_control)

    if settings.method in ("bayesian", "bandit"):
        loss_cap = settings.max_expected_loss * abs(control_mean)
        significant = [
            c
            for c in comparisons
            if c.bayes.chance_to_beat_control >= 1 - settings.alpha
            and c.bayes.expected_loss <= loss_cap
        ]
    else:
        significant = [c for c in comparisons if adjusted[c.index] <= settings.alpha
                       and c.difference > 0]  # fmt: skip
    if settings.method == "fixed" and not at_horizon:
        significant = []
    # A guardrail harmed significantly takes a variant out of the running for now.
    leader = max((c for c in significant if c.index not in harmed), key=lambda c: c.difference,
                 default=None)  # fmt: skip
    held = None
    if leader is None and significant:
        held = max(significant, key=lambda c: c.difference)

    blocks = []
    if not srm_ok:
        blocks.append(
            f"traffic does not match the weights (sample ratio mismatch, p = {srm_p:.2g} < "
            f"{settings.srm_threshold:g}); promotion is blocked until that is fixed"
        )
    candidate = leader or held
    if candidate is not None:
        if held is not None:
            harm = _harm_text(harmed[held.index], settings.alpha)
            blocks.insert(0, harm + "; automatic promotion is held while that harm is significant")
        lift = candidate.lift.estimate
        if lift is not None and lift < settings.min_lift:
            blocks.append(f"its lift {lift:+.1%} is below the minimum of {settings.min_lift:+.1%}")
        if fewest < settings.min_visitors_per_variant:
            more = settings.min_visitors_per_variant - fewest
            blocks.append(
                f"every variant needs {_count(settings.min_visitors_per_variant, 'visitor')} "
                f"({more:,} more)"
            )
        if running_days < settings.min_running_days:
            blocks.append(
                f"the test must run {_count(settings.min_running_days, 'day', 'g')} "
                f"({running_days:.1f} so far)"
            )
        name = label[candidate.index]
        evidence = _evidence(candidate, adjusted, settings)
        if not blocks:
            return "promote", leader.index, f"{name} beats control ({evidence}).", None
        reason = f"{name} beats control ({evidence}) but " + "; ".join(blocks)
    else:
        reason = _progress(arms, comparisons, adjusted, label, settings, fewest, at_horizon)
        if blocks:
            reason += " Also, " + blocks[0] + "."
        for index in sorted(harmed):
            reason += f" {label[index]} " + _harm_text(harmed[index], settings.alpha) + "."
    held_index = None if held is None else held.index
    if at_horizon:
        if out_of_time:
            why = f"the maximum duration of {_count(settings.max_duration_days, 'day', 'g')}"
        elif fewest >= settings.max_visitors_per_variant:
            why = f"the planned {_count(settings.max_visitors_per_variant, 'visitor')} per variant"
        else:
            why = (
                "the planned information (that of "
                f"{_count(settings.max_visitors_per_variant, 'visitor')} "
                "in each of two equal groups)"
            )
        reason = f"Stopped at {why} without a winner; keeping the control. {reason}"
        return "stop", None, reason, held_index
    if candidate is not None:
        reason += "."
    return ("hold" if held is not None else "continue"), None, reason, held_index


def _harm_text(results: list[GuardrailResult], alpha: float) -> str:
    """ "is worse than the control on revenue per visitor (-6.2%, p = 0.003 <= 0.05)"."""
    parts = []
    for result in results:
        name = guardrails.GUARDRAIL_NAMES[result.metric]
        change = "" if result.change is None else f"{result.change:+.1%}, "
        allowed = ""
        if result.max_drop:
            allowed = f" by more than the {result.max_drop:.1%} allowed"
        evidence = f"always-valid p = {result.p_value:.2g} <= {alpha:g}"
        parts.append(f"{name}{allowed} ({change}{evidence})")
    return "is worse than the control on " + " and on ".join(parts)


def _evidence(comparison, adjusted, settings) -> str:
    lift = comparison.lift.estimate
    lift_text = "" if lift is None else f"{lift:+.1%}, "
    if settings.method in ("bayesian", "bandit"):
        return f"{lift_text}chance to beat control {comparison.bayes.chance_to_beat_control:.1%}"
    return f"{lift_text}p = {adjusted[comparison.index]:.2g} <= {settings.alpha:g}" + _holm_note(
        adjusted
    )


def _holm_note(adjusted) -> str:
    count = len(adjusted)
    return f" after Holm's correction for {count} variants" if count > 1 else ""


def _progress(arms, comparisons, adjusted, label, settings, fewest, at_horizon) -> str:
    """Why nothing is promoted yet, in words."""
    ahead = [c for c in comparisons if c.difference > 0]
    if not ahead:
        smallest = _count(fewest, "visitor")
        return f"No variant is ahead of the control yet ({smallest} in the smallest)."
    best = max(ahead, key=lambda c: c.difference)
    name = label[best.index]
    lift = best.lift.estimate
    lead = f"{name} leads" + ("" if lift is None else f" ({lift:+.1%})")
    if settings.method in ("bayesian", "bandit"):
        return (
            f"{lead} with a {best.bayes.chance_to_beat_control:.1%} chance to beat control; "
            f"promotion needs {1 - settings.alpha:.0%}."
        )
    p_text = f"p = {adjusted[best.index]:.2g} > {settings.alpha:g}{_holm_note(adjusted)}"
    if at_horizon:
        return f"{lead} but is not significant ({p_text})."
    if settings.method == "fixed":
        return (
            f"{lead}; the fixed-horizon test decides at "
            f"{_count(settings.max_visitors_per_variant, 'visitor')} per variant "
            f"({fewest:,} so far) or after {_count(settings.max_duration_days, 'day', 'g')}."
        )
    if settings.method == "sequential":
        level = settings.alpha / len(comparisons)
        control = next(a for a in arms if a.is_control)
        # In units of information: post-stratification makes each visitor count ``efficiency``
        # times, so the design's planned maximum is reached with fewer visitors.
        visitors = 2.0 / (1.0 / arms[best.index].visitors + 1.0 / control.visitors)
        needed = sequential.visitors_to_cross(
            best.z, visitors * best.efficiency, settings.max_visitors_per_variant, level
        )
        if needed is not None and needed <= settings.max_visitors_per_variant:
            more = max(math.ceil(needed / best.efficiency - fewest), 1)
            return f"{lead} but needs about {_count(more, 'more visitor')} per variant ({p_text})."
        return (
            f"{lead} but at this effect is unlikely to be significant before the planned "
            f"{_count(settings.max_visitors_per_variant, 'visitor')} per variant ({p_text})."
        )
    return f"{lead} but is not significant yet ({p_text})."


def _count(number, noun: str, spec: str = ",") -> str:
    """``number`` and its noun, singular for exactly one: "1 visitor", "2 visitors", "1 day"."""
    return f"{number:{spec}} {noun}{'' if number == 1 else 's'}"


def _label(arm: Arm) -> str:
    return f"Variant {arm.name}" if arm.name else f"Variant {arm.variant_id}"


def _finite(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
