"""Tests that stay valid when the results are looked at after every batch of visitors.

Two always-valid p-values, both working on numpy arrays as well as on floats (the simulation
uses the same functions as the policy):

* :func:`spending_pvalue` (method ``"sequential"``, the default): a group-sequential design with
  Lan-DeMets O'Brien-Fleming-type alpha spending over a planned maximum of visitors per variant,
  with the boundary that is exact for continuous monitoring, hence valid (and conservative) for
  any number and timing of looks.
* :func:`msprt_pvalue` (method ``"msprt"``): the mixture sequential probability ratio test of
  Johari et al. with a normal mixture; no planned maximum, lower power at a given maximum.
"""

import math

import numpy as np
from scipy import special

_SQRT_2PI = math.sqrt(2 * math.pi)

__all__ = [
    "information_fraction",
    "obf_boundary",
    "obf_spending",
    "spending_pvalue",
    "msprt_pvalue",
    "visitors_to_cross",
    "crossing_probability",
]


def information_fraction(visitors, control_visitors, max_visitors_per_variant):
    """Share of the planned information reached: ``t = n_h / n_max``, not capped.

    ``n_h = 2 / (1 / visitors + 1 / control_visitors)`` is the harmonic mean of the two groups'
    sizes: the variance of a difference of means is proportional to ``1 / n_h``, so ``t`` is the
    current information divided by the information of ``n_max`` visitors in each group.
    """
    if np.any(np.asarray(max_visitors_per_variant) <= 0):
        raise ValueError("max_visitors_per_variant must be > 0")
    harmonic = 2.0 / (1.0 / np.asarray(visitors, float) + 1.0 / np.asarray(control_visitors, float))
    return harmonic / max_visitors_per_variant


def obf_spending(t, alpha: float = 0.05):
    """Lan-DeMets O'Brien-Fleming-type spending: ``alpha(t) = 2 (1 - Phi(z_{alpha/2} / sqrt(t)))``.

    Notes
    -----
    By the reflection principle this is exactly ``P(sup_{s <= t} W(s) >= z_{alpha/2})`` for a
    standard Brownian motion ``W``: the probability that the B-value ``B(s) = Z(s) sqrt(s)``
    crosses the constant level ``z_{alpha/2}`` by information time ``t``, when it is watched
    continuously. See :func:`spending_pvalue`.
    """
    t = np.clip(np.asarray(t, float), 1e-300, None)
    return 2.0 * special.ndtr(-special.ndtri(1 - alpha / 2) / np.sqrt(t))


def obf_boundary(t, alpha: float = 0.05):
    """The z-value a variant must exceed at information time ``t``: ``z_{alpha/2} / sqrt(t)``."""
    t = np.clip(np.asarray(t, float), 1e-300, None)
    return special.ndtri(1 - alpha / 2) / np.sqrt(t)


def spending_pvalue(z, t):
    """Always-valid p-value of the O'Brien-Fleming-type alpha-spending design.

    Parameters
    ----------
    z : float or array
        Fixed-horizon z statistic of the variant against the control (positive: variant better).
    t : float or array
        Information fraction (:func:`information_fraction`); values above 1 count as 1.

    Returns
    -------
    float or array
        ``p = min(1, 2 Phi(-|z| sqrt(min(t, 1))))``.

    Notes
    -----
    The design promotes a variant when its B-value ``B = z sqrt(t)`` reaches ``z_{alpha/2}`` (1.96
    for alpha = 0.05) with the variant ahead, at any look up to the planned maximum ``t = 1``;
    ``p <= alpha`` is exactly that event. Under the null hypothesis ``B`` is a Brownian motion in
    ``t``, and by the reflection principle ``P(sup_{t <= 1} B(t) >= z_{alpha/2}) = alpha``: the
    chance of ever promoting a variant that is no better than control is at most alpha *however
    often and whenever* the results are looked at, with equality only for continuous monitoring.
    The cumulative error spent by time ``t`` is :func:`obf_spending`, the Lan-DeMets spending
    function that mimics O'Brien-Fleming's boundaries. Because this boundary is exact for
    continuous looks, it needs no record of past looks (the evaluator may look at any time); for
    a finite number of looks it is conservative (:func:`crossing_probability` gives the exact
    error of a given look schedule).

    Since ``sqrt(t) <= 1`` the p-value is never below the fixed-horizon two-sided p-value at the
    same data, and equals it at the planned maximum, where the test has the power of a
    fixed-horizon two-sided test at level alpha (plus the chances of crossing earlier).

    The tuning parameter is the planned maximum ``n_max`` visitors per variant (setting
    ``max_visitors_per_variant``): a larger ``n_max`` makes early promotion harder and late
    promotion easier. Beyond ``t = 1`` the design is exhausted; the policy stops the test there.

    References
    ----------
    .. [1] Lan, K. K. G., DeMets, D. L. (1983). Discrete sequential boundaries for clinical
       trials. Biometrika 70(3), 659-663.
    .. [2] O'Brien, P. C., Fleming, T. R. (1979). A multiple testing procedure for clinical
       trials. Biometrics 35(3), 549-556.
    .. [3] Lan, K. K. G., Wittes, J. (1988). The B-value: a tool for monitoring data.
       Biometrics 44(2), 579-585.
    """
    t = np.clip(np.asarray(t, float), 0.0, 1.0)
    p = np.minimum(2.0 * special.ndtr(-np.abs(np.asarray(z, float)) * np.sqrt(t)), 1.0)
    return float(p) if p.ndim == 0 else p


def msprt_pvalue(difference, variance, tau):
    """Always-valid p-value of the normal-mixture SPRT (mSPRT) for a difference of means.

    Parameters
    ----------
    difference : float or array
        Estimated difference ``mean - control_mean``.
    variance : float or array
        Its estimated variance ``V`` (e.g. ``p (1 - p) (1 / n + 1 / n_c)``).
    tau : float or array
        Standard deviation of the normal mixing distribution over the true difference, in the
        units of ``difference``.

    Returns
    -------
    float or array
        ``min(1, 1 / Lambda)`` with
        ``Lambda = sqrt(V / (V + tau**2)) exp(tau**2 difference**2 / (2 V (V + tau**2)))``.

    Notes
    -----
    ``Lambda`` is the likelihood ratio of "difference ~ N(0, tau**2)" against "difference = 0";
    under the null it is a nonnegative martingale, so by Ville's inequality
    ``P(sup Lambda >= 1 / alpha) <= alpha`` over an unlimited number of looks. The policy uses
    ``tau = msprt_tau * (pooled mean)``, i.e. tau is a *relative* effect (default 0.1, a 10%
    lift): it is the effect size the test is fastest to detect. The p-value is never below the
    fixed-horizon two-sided p-value at the same data (max over tau of ``Lambda`` is
    ``exp((z**2 - 1) / 2) / |z|``, below ``1 / (2 Phi(-|z|))`` by Mills' ratio).

    References
    ----------
    .. [1] Johari, R., Koomen, P., Pekelis, L., Walsh, D. (2017). Peeking at A/B tests: why it
       matters, and what to do about it. KDD '17.
    .. [2] Robbins, H. (1970). Statistical methods related to the law of the iterated logarithm.
       Annals of Mathematical Statistics 41(5), 1397-1409.
    """
    difference = np.asarray(difference, float)
    variance = np.asarray(variance, float)
    tau2 = np.asarray(tau, float) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        log_lambda = 0.5 * np.log(variance / (variance + tau2)) + tau2 * difference**2 / (
            2.0 * variance * (variance + tau2)
        )
    # No variance (all or nothing converted in both groups): no evidence either way.
    log_lambda = np.where((variance > 0) & (tau2 > 0), log_lambda, 0.0)
    p = np.minimum(np.exp(-np.maximum(log_lambda, 0.0)), 1.0)
    return float(p) if p.ndim == 0 else p


def visitors_to_cross(z: float, visitors: float, max_visitors_per_variant: float, level: float):
    """Visitors per variant at which the design's p-value would reach ``level``, if the current
    effect holds (z grows like the square root of visitors); ``None`` if z is not positive.

    With ``z(n) = z sqrt(n / visitors)`` and ``t = n / n_max`` the B-value is
    ``z n / sqrt(visitors n_max)``; it reaches ``Phi^-1(1 - level / 2)`` at the returned ``n``.
    """
    if z <= 0 or visitors <= 0:
        return None
    critical = float(special.ndtri(1 - level / 2))
    return critical * math.sqrt(visitors * max_visitors_per_variant) / z


def crossing_probability(fractions, boundaries, drift: float = 0.0, grid_size: int = 401):
    """Probability that a Brownian motion with drift crosses ``boundaries`` at ``fractions``.

    Parameters
    ----------
    fractions : sequence of float
        Increasing information times of the looks, in (0, 1].
    boundaries : sequence of float
        Upper z-value boundaries at those looks (one-sided).
    drift : float, default 0
        Drift of the B-value per unit information (``E[Z(1)]``); 0 gives the type-I error.
    grid_size : int
        Points of the numerical integration grid.

    Returns
    -------
    float
        ``P(Z(t_k) >= b_k for some k)``.

    Notes
    -----
    The recursive numerical integration of Armitage, McPherson and Rowe: the density of the
    B-value on the continuation region is carried from look to look by convolution with the
    normal increment. Used to measure how conservative the continuous-monitoring boundary is for
    a given look schedule.

    References
    ----------
    .. [1] Armitage, P., McPherson, C. K., Rowe, B. C. (1969). Repeated significance tests on
       accumulating data. JRSS A 132(2), 235-244.
    .. [2] Jennison, C., Turnbull, B. W. (2000). Group Sequential Methods with Applications to
       Clinical Trials, ch. 19.
    """
    fractions = np.asarray(fractions, float)
    boundaries = np.asarray(boundaries, float)
    if fractions.ndim != 1 or fractions.shape != boundaries.shape or len(fractions) == 0:
        raise ValueError("fractions and boundaries must be 1-d sequences of the same length")
    if np.any(np.diff(fractions) <= 0) or fractions[0] <= 0:
        raise ValueError("fractions must be positive and increasing")
    # Each look's continuation region (low, boundary] gets its own grid ending exactly at the
    # boundary, with trapezoid weights: the truncation there is where coarse grids go wrong.
    low = -8.0 * math.sqrt(fractions[-1]) + min(drift * fractions[-1], 0.0)
    crossed = 0.0
    grid = weights = density = None
    previous = 0.0
    for t, b in zip(fractions, boundaries, strict=True):
        mean_shift = drift * (t - previous)
        sd = math.sqrt(t - previous)
        upper = b * math.sqrt(t)  # boundary on the B-value scale
        if density is None:
            crossed += float(special.ndtr((mean_shift - upper) / sd))
        else:
            mass = weights * density
            crossed += float(mass @ special.ndtr((grid + mean_shift - upper) / sd))
        new_grid = np.linspace(min(low, upper - 1.0), upper, grid_size)
        if density is None:
            density = np.exp(-0.5 * ((new_grid - mean_shift) / sd) ** 2) / (sd * _SQRT_2PI)
        else:
            kernel = (new_grid[:, None] - grid[None, :] - mean_shift) / sd
            density = (np.exp(-0.5 * kernel**2) / (sd * _SQRT_2PI)) @ mass
        grid = new_grid
        weights = np.full(grid_size, grid[1] - grid[0])
        weights[[0, -1]] *= 0.5
        previous = t
    return crossed
