"""Thompson-sampling traffic weights for a multi-armed bandit campaign."""

import math
from collections.abc import Sequence

import numpy as np

from . import stats

__all__ = ["thompson_weights"]


def thompson_weights(
    arms: Sequence,
    metric: str | None = None,
    *,
    burn_in_visitors: int = 100,
    floor: float = 0.05,
    draws: int = 10_000,
    rng: np.random.Generator | int | None = None,
) -> dict[int, float]:
    """Traffic weights proportional to each arm's posterior chance of being the best.

    Parameters
    ----------
    arms : sequence of :class:`ab.policy.Arm`
        Each with ``variant_id``, ``visitors``, ``conversions``, ``value_sum``,
        ``value_sum_squares`` and ``weight``.
    metric : str, optional
        ``"revenue"`` for per-visitor values (Normal posteriors of the means); any other metric
        is a conversion rate (Beta(1, 1) prior). ``None`` infers it: values are 0/1 conversions
        when ``value_sum == value_sum_squares == conversions`` for every arm.
    burn_in_visitors : int, default 100
        Until every arm has this many visitors, the configured weights are returned unchanged
        (normalised), so early noise does not starve an arm.
    floor : float, default 0.05
        Minimum weight per arm; ``len(arms) * floor`` must be below 1. Arms are weighted from
        the data only after the burn-in, and then every arm gets at least the floor, including
        one configured at weight 0.
    draws : int, default 10,000
        Posterior draws per arm; the Monte Carlo error of a weight is below 0.005.
    rng : numpy Generator or seed, optional
        Source of randomness, for reproducible weights in tests and simulations.

    Returns
    -------
    dict
        ``{variant_id: weight}``, weights summing to 1.

    Raises
    ------
    ValueError
        On fewer than 2 arms, a floor outside ``[0, 1 / len(arms))``, counts that are negative or
        not whole or with conversions above visitors, a weight that is negative or not finite,
        or (for revenue) moments that are not finite or come from under 2 visitors.

    Notes
    -----
    Thompson sampling sends each visitor to an arm with the probability that the arm is the best
    under the posterior; with per-round batches this is ``P(best)`` estimated by drawing from the
    posteriors. Each weight is then ``floor + (1 - k floor) P(best)`` so that every arm keeps
    collecting data (the estimate of a losing arm must stay checkable). Bandits spend less
    traffic on losers but do not control the false-positive rate of a final promotion; the
    policy judges bandit campaigns with the Bayesian rule.

    References
    ----------
    .. [1] Thompson, W. R. (1933). On the likelihood that one unknown probability exceeds another
       in view of the evidence of two samples. Biometrika 25(3-4), 285-294.
    .. [2] Scott, S. L. (2010). A modern Bayesian look at the multi-armed bandit. Applied
       Stochastic Models in Business and Industry 26(6), 639-658.
    """
    k = len(arms)
    if k < 2:
        raise ValueError(f"arms: a bandit needs at least 2 arms, got {k}")
    if not 0.0 <= floor or k * floor >= 1.0:
        raise ValueError(f"floor: {k} arms x floor {floor} must be below 1")
    if draws < 1:
        raise ValueError("draws must be >= 1")
    if not (stats.is_real(burn_in_visitors) and burn_in_visitors >= 0):
        raise ValueError(f"burn_in_visitors must be a number >= 0, got {burn_in_visitors!r}")
    for arm in arms:
        name = f"variant {arm.variant_id}"
        stats.check_counts(arm.visitors, arm.conversions, name)
        if not (stats.is_real(arm.weight) and math.isfinite(arm.weight) and arm.weight >= 0):
            raise ValueError(f"{name}: weight must be finite and >= 0, got {arm.weight!r}")
    ids = [arm.variant_id for arm in arms]
    if min(arm.visitors for arm in arms) < burn_in_visitors:
        configured = np.array([float(arm.weight) for arm in arms])
        if configured.sum() <= 0:
            configured = np.ones(k)
        return dict(zip(ids, (configured / configured.sum()).tolist(), strict=True))
    generator = np.random.default_rng(rng)
    if metric is None:
        metric = "rate" if all(_is_binary(arm) for arm in arms) else "revenue"
    if metric == "revenue":
        for arm in arms:
            stats.check_moments(
                stats.Moments(arm.visitors, arm.value_sum, arm.value_sum_squares),
                f"variant {arm.variant_id}",
            )
    if metric == "revenue":
        samples = np.stack([_normal_draws(arm, draws, generator) for arm in arms])
    else:
        samples = np.stack(
            [
                generator.beta(1 + arm.conversions, 1 + arm.visitors - arm.conversions, draws)
                for arm in arms
            ]
        )
    best = np.bincount(np.argmax(samples, axis=0), minlength=k) / draws
    weights = floor + (1.0 - k * floor) * best
    return dict(zip(ids, (weights / weights.sum()).tolist(), strict=True))


def _is_binary(arm) -> bool:
    return arm.value_sum == arm.value_sum_squares == arm.conversions


def _normal_draws(arm, draws: int, generator: np.random.Generator) -> np.ndarray:
    n = arm.visitors
    mean = arm.value_sum / n
    variance = max(arm.value_sum_squares - arm.value_sum**2 / n, 0.0) / (n - 1)
    return generator.normal(mean, np.sqrt(variance / n), draws)
