"""Guardrail metrics: a winner must not be significantly worse than the control on them.

A campaign judged on survey completion may name revenue per visitor, the order rate or the
close rate as guardrails. Each is tested one-sided for *harm* (the variant worse than the control
by more than ``max_drop``, relative) with the policy's alpha-spending boundary, which stays valid
however often the results are looked at. A harmed guardrail holds the automatic promotion of
that variant for as long as the harm stays significant.

Inputs are the arms' sufficient statistics (optionally per stratum, :mod:`ab.stratification`);
:func:`harm_pvalue` works on numpy arrays for the simulation.
"""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import special

from . import stats, stratification

__all__ = [
    "GUARDRAIL_METRICS",
    "LOWER_IS_BETTER",
    "BINARY_GUARDRAILS",
    "GUARDRAIL_NAMES",
    "Guardrail",
    "GuardrailResult",
    "harm_pvalue",
    "boundary",
    "ratio_interval",
    "judge_guardrail",
]

#: What a campaign may guard: revenue per visitor, the share of visitors who order after their
#: first impression, and the share who close the popup.
GUARDRAIL_METRICS = ("revenue", "order", "close")
#: Guardrails where a rise is the harm (a variant that makes more visitors close the popup).
LOWER_IS_BETTER = frozenset({"close"})
#: Guardrails whose per-visitor values are 0/1; revenue is an amount.
BINARY_GUARDRAILS = frozenset({"order", "close"})
#: How a decision's reason names them.
GUARDRAIL_NAMES = {"revenue": "revenue per visitor", "order": "order rate", "close": "close rate"}


@dataclass(frozen=True)
class Guardrail:
    """A guardrail: ``metric`` must not get worse than the control's by more than ``max_drop``
    (relative: 0.02 tolerates 2% less revenue per visitor, or 2% more closes)."""

    metric: str
    max_drop: float = 0.0

    def __post_init__(self):
        if self.metric not in GUARDRAIL_METRICS:
            raise ValueError(
                f"guardrail metric must be one of {', '.join(GUARDRAIL_METRICS)}, "
                f"got {self.metric!r}"
            )
        if not (stats.is_real(self.max_drop) and 0.0 <= self.max_drop < 1.0):
            raise ValueError(f"max_drop must be a number in [0, 1), got {self.max_drop!r}")

    @property
    def lower_is_better(self) -> bool:
        return self.metric in LOWER_IS_BETTER


@dataclass(frozen=True)
class GuardrailResult:
    """One variant's guardrail against the control, every float finite or ``None``.

    ``change`` is the relative change of the variant's mean (``mean / control_mean - 1``,
    post-stratified when ``adjusted``) and ``ci`` its always-valid interval: each bound holds at
    level alpha at every look (a ``1 - 2 alpha`` confidence sequence). ``p_value`` is the
    always-valid one-sided p-value of harm beyond ``max_drop``; ``harmed`` is ``p_value <=
    alpha``. ``verdict`` is ``"harmed"``, ``"ok"`` or ``"no data"`` (no conversions or no
    variance yet: nothing to judge).
    """

    metric: str
    variant_id: int
    max_drop: float
    lower_is_better: bool
    control_mean: float | None
    mean: float | None
    change: float | None
    ci: tuple[float | None, float | None]
    p_value: float | None
    harmed: bool
    verdict: str
    adjusted: bool
    information: float

    def as_dict(self) -> dict:
        result = asdict(self)
        result["ci"] = list(self.ci)
        return result


def boundary(t, alpha: float):
    """The z-value harm must reach at information time ``t``: ``z_{alpha/2} / sqrt(t)``."""
    return special.ndtri(1 - alpha / 2) / np.sqrt(np.clip(np.asarray(t, float), 1e-300, 1.0))


def harm_pvalue(estimate, variance, t):
    """Always-valid one-sided p-value that the contrast ``estimate`` is below 0 (harm).

    Parameters
    ----------
    estimate : float or array
        ``variant - (1 - max_drop) * control`` (its negative when lower is better), so that
        harm beyond the margin is a negative contrast.
    variance : float or array
        Its variance.
    t : float or array
        Information fraction of the sequential design (values above 1 count as 1).

    Returns
    -------
    float or array
        ``min(1, 2 Phi(z sqrt(t)))`` for ``z = estimate / sqrt(variance)``; 1 without variance.

    Notes
    -----
    This is the one-sided form of :func:`ab.sequential.spending_pvalue`, the boundary of the
    primary test. At the margin the B-value ``B(t) = z sqrt(t)`` is a Brownian motion in
    information time, and by the reflection principle ``P(inf_{t <= 1} B(t) <= -z_{alpha/2})
    = alpha``: a guardrail that is in truth within its margin is flagged as harmed with
    probability at most alpha over the whole test, however often and whenever it is looked at.
    The p-value is never below the fixed-horizon one-sided p-value ``Phi(z)``.
    """
    estimate = np.asarray(estimate, float)
    variance = np.asarray(variance, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(variance > 0, estimate / np.sqrt(variance), 0.0)
    t = np.clip(np.asarray(t, float), 0.0, 1.0)
    p = np.minimum(2.0 * special.ndtr(np.minimum(z, 0.0) * np.sqrt(t)), 1.0)
    return float(p) if p.ndim == 0 else p


def ratio_interval(mean, variance, control_mean, control_variance, k):
    """Fieller's interval for ``mean / control_mean``: the ratios ``r`` not rejected by
    ``|mean - r control_mean| / sqrt(variance + r**2 control_variance) < k``.

    Returns ``(lower, upper)``, each ``None`` where the set is unbounded (the control's mean is
    not itself distinguishable from 0 at ``k``). Inverting the test the guardrail uses makes the
    interval and the verdict agree: harm is flagged exactly when the bound on the bad side lies
    beyond the margin.
    """
    a = control_mean**2 - k**2 * control_variance
    b = mean * control_mean
    c = mean**2 - k**2 * variance
    if a <= 0 or not math.isfinite(k):
        return None, None
    root = b * b - a * c
    if root < 0:  # cannot happen for a > 0 (root = k**2 (...) >= 0); rounding only
        root = 0.0
    half = math.sqrt(root)
    return (b - half) / a, (b + half) / a


def judge_guardrail(
    guardrail: Guardrail,
    arm_figures: tuple[int, float, float],
    control_figures: tuple[int, float, float],
    variant_id: int,
    alpha: float,
    t: float,
    arm_strata: Sequence[stratification.StratumFigures] = (),
    control_strata: Sequence[stratification.StratumFigures] = (),
    min_stratum_visitors: int = stratification.MIN_STRATUM_VISITORS,
) -> GuardrailResult:
    """Test one variant's guardrail against the control.

    Parameters
    ----------
    guardrail : Guardrail
    arm_figures, control_figures : (visitors, value_sum, value_sum_squares)
        The metric's sufficient statistics (conversions twice for a 0/1 metric).
    variant_id : int
    alpha : float
        The campaign's alpha: the one-sided level of the harm test.
    t : float
        The comparison's information fraction by visitors (:func:`ab.sequential.
        information_fraction`).
    arm_strata, control_strata : sequences of :class:`~ab.stratification.StratumFigures`
        Per-stratum figures of the metric; with both given and more than one stratum left after
        merging small ones, the test is post-stratified and its information fraction grows by
        the variance it saves (``t * raw variance / adjusted variance``).

    Notes
    -----
    The contrast is ``d = variant - (1 - max_drop) control`` (``(1 + max_drop) control -
    variant`` when lower is better) with the unpooled variance ``V_variant + (1 - max_drop)**2
    V_control``; harm is ``d / sqrt(V) sqrt(t) <= -z_{alpha/2}`` (:func:`harm_pvalue`).
    """
    stats.check_alpha(alpha)
    binary = guardrail.metric in BINARY_GUARDRAILS
    sign = -1.0 if guardrail.lower_is_better else 1.0
    factor = 1.0 - sign * guardrail.max_drop
    raw = tuple(np.array([[float(a)], [float(c)]]) for a, c in zip(arm_figures, control_figures,
                                                                   strict=True))  # fmt: skip
    raw_estimate, raw_variance = stratification.contrast(*raw, 0, 1, binary, factor)
    estimate, variance = raw_estimate, raw_variance
    means, mean_variances = stratification.stratified_means(*raw, binary)
    adjusted = False
    if arm_strata and control_strata:
        collapsed = stratification.collapse_figures(
            [arm_strata, control_strata], min_stratum_visitors
        )
        if collapsed.strata > 1:
            cells = (collapsed.visitors, collapsed.sums, collapsed.squares)
            estimate, variance = stratification.contrast(*cells, 0, 1, binary, factor)
            means, mean_variances = stratification.stratified_means(*cells, binary)
            adjusted = variance > 0
            if not adjusted:
                estimate, variance = raw_estimate, raw_variance
    information = float(t)
    if adjusted and raw_variance > 0:
        information = float(t) * float(raw_variance) / float(variance)
    mean, control_mean = float(means[0]), float(means[1])
    judged = variance > 0 and control_mean > 0
    if not judged:
        return GuardrailResult(
            guardrail.metric, variant_id, float(guardrail.max_drop), guardrail.lower_is_better,
            _finite(control_mean), _finite(mean), None, (None, None), None, False, "no data",
            adjusted, information,
        )  # fmt: skip
    p_value = harm_pvalue(sign * float(estimate), float(variance), information)
    k = float(boundary(information, alpha))
    lower, upper = ratio_interval(
        mean, float(mean_variances[0]), control_mean, float(mean_variances[1]), k
    )
    harmed = p_value <= alpha
    return GuardrailResult(
        metric=guardrail.metric,
        variant_id=variant_id,
        max_drop=float(guardrail.max_drop),
        lower_is_better=guardrail.lower_is_better,
        control_mean=_finite(control_mean),
        mean=_finite(mean),
        change=_finite(mean / control_mean - 1.0),
        ci=(
            None if lower is None else _finite(lower - 1.0),
            None if upper is None else _finite(upper - 1.0),
        ),  # fmt: skip
        p_value=_finite(p_value),
        harmed=bool(harmed),
        verdict="harmed" if harmed else "ok",
        adjusted=bool(adjusted),
        information=information,
    )


def _finite(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
