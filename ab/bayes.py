"""Bayesian comparisons of a variant with the control: chance to beat it and expected loss.

Closed forms and deterministic quadrature only (no Monte Carlo), so the numbers are the same on
every call and cheap enough for the evaluation hot path.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from . import stats

__all__ = ["Comparison", "beta_comparison", "normal_comparison"]

#: Gauss-Legendre nodes and weights on [-1, 1]; 64 nodes integrate the smooth integrands below
#: to ~1e-10 (checked against 128 nodes) over a window of +-14 posterior standard deviations.
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)
_WINDOW_SD = 14.0


@dataclass(frozen=True)
class Comparison:
    """A variant against the control under the posterior.

    ``chance_to_beat_control`` is ``P(variant mean > control mean | data)``;
    ``expected_loss`` is ``E[max(control mean - variant mean, 0) | data]``, what choosing the
    variant costs on average (in the metric's units) if it is in fact worse.
    """

    chance_to_beat_control: float
    expected_loss: float


def beta_comparison(
    conversions: int,
    visitors: int,
    control_conversions: int,
    control_visitors: int,
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
) -> Comparison:
    """Chance to beat control and expected loss with Beta-binomial posteriors.

    Notes
    -----
    With a ``Beta(prior_alpha, prior_beta)`` prior (uniform by default) each rate's posterior is
    ``Beta(prior_alpha + conversions, prior_beta + visitors - conversions)``. Then

    * ``P(X > Y) = integral f_X(x) I_x(a_Y, b_Y) dx = 1 - integral f_Y(y) I_y(a_X, b_X) dy``,
    * ``E[(Y - X)+] = integral f_X(x) (m_Y (1 - I_x(a_Y + 1, b_Y)) - x (1 - I_x(a_Y, b_Y))) dx
      = integral f_Y(y) (y I_y(a_X, b_X) - m_X I_y(a_X + 1, b_X)) dy``,

    using ``y f_Y(y) = m_Y f_{Beta(a_Y + 1, b_Y)}(y)``, where ``X`` is the variant, ``Y`` the
    control, ``I`` the regularised incomplete beta function and ``m`` a posterior mean. Both
    integrals are computed by 64-point Gauss-Legendre quadrature over the outer density's mean
    +- 14 standard deviations (clipped to [0, 1]), the outer density being the *narrower* of the
    two posteriors: the inner distribution function is then smooth on the window. (Integrating
    over the wider one puts the other's whole rise between two nodes: 9/100 against
    100,000/1,000,000 was off by 0.05.) Agrees with adaptive quadrature to about 1e-9. Evan
    Miller's exact sum for ``P(X > Y)`` costs one term per conversion; quadrature costs the same
    at any count.

    References
    ----------
    .. [1] Miller, E. (2015). Formulas for Bayesian A/B testing.
       https://www.evanmiller.org/bayesian-ab-testing.html
    .. [2] Stucchio, C. (2015). Bayesian A/B testing at VWO (expected loss).

    Raises
    ------
    ValueError
        On counts that are negative, not whole, or with conversions above visitors, or a prior
        parameter that is not a finite number above 0.
    """
    stats.check_counts(visitors, conversions)
    stats.check_counts(control_visitors, control_conversions, "control")
    for label, value in (("prior_alpha", prior_alpha), ("prior_beta", prior_beta)):
        if not (stats.is_real(value) and math.isfinite(value) and value > 0):
            raise ValueError(f"{label} must be a finite number > 0, got {value!r}")
    a_x = prior_alpha + conversions
    b_x = prior_beta + visitors - conversions
    a_y = prior_alpha + control_conversions
    b_y = prior_beta + control_visitors - control_conversions
    if _beta_sd(a_x, b_x) <= _beta_sd(a_y, b_y):
        # Outer integral over the variant: P(X > Y) = E_X[F_Y(X)], E[(Y - X)+] = E_X[g_Y(X)].
        x, wx = _beta_window(a_x, b_x)
        density = wx * _beta_pdf(x, a_x, b_x)
        control_cdf = special.betainc(a_y, b_y, x)
        chance = float(density @ control_cdf)
        control_mean = a_y / (a_y + b_y)
        excess = control_mean * (1.0 - special.betainc(a_y + 1, b_y, x)) - x * (1.0 - control_cdf)
    else:
        # Outer integral over the control: P(X > Y) = 1 - E_Y[F_X(Y)],
        # E[(Y - X)+] = E_Y[Y F_X(Y) - m_X I_Y(a_X + 1, b_X)].
        y, wy = _beta_window(a_y, b_y)
        density = wy * _beta_pdf(y, a_y, b_y)
        variant_cdf = special.betainc(a_x, b_x, y)
        chance = 1.0 - float(density @ variant_cdf)
        variant_mean = a_x / (a_x + b_x)
        excess = y * variant_cdf - variant_mean * special.betainc(a_x + 1, b_x, y)
    loss = float(density @ np.maximum(excess, 0.0))
    return Comparison(_unit(chance), max(loss, 0.0))


def normal_comparison(
    mean: float, variance_of_mean: float, control_mean: float, control_variance_of_mean: float
) -> Comparison:
    """Chance to beat control and expected loss with Normal posteriors of two means (revenue).

    Notes
    -----
    With a flat prior and a large sample, each mean's posterior is ``N(mean, s**2 / n)``. The
    difference ``D = control - variant`` is ``N(mu, sigma**2)`` with ``mu = control_mean - mean``
    and ``sigma**2`` the sum of the variances; then ``P(variant > control) = Phi(-mu / sigma)``
    and ``E[D+] = sigma phi(mu / sigma) + mu Phi(mu / sigma)``.

    References
    ----------
    .. [1] Gelman et al. (2013). Bayesian Data Analysis, 3rd ed., sec. 3.2.

    Raises
    ------
    ValueError
        If a mean or variance is not a finite number, or a variance is negative.
    """
    for label, value in (
        ("mean", mean),
        ("variance_of_mean", variance_of_mean),
        ("control_mean", control_mean),
        ("control_variance_of_mean", control_variance_of_mean),
    ):
        if not (stats.is_real(value) and math.isfinite(value)):
            raise ValueError(f"normal_comparison: {label} must be a finite number, got {value!r}")
    if variance_of_mean < 0 or control_variance_of_mean < 0:
        raise ValueError("normal_comparison: variances must be >= 0")
    mu = control_mean - mean
    sigma = math.sqrt(variance_of_mean + control_variance_of_mean)
    if sigma == 0.0:
        return Comparison(0.5 if mu == 0 else float(mu < 0), max(mu, 0.0))
    ratio = mu / sigma
    phi = math.exp(-0.5 * ratio * ratio) / math.sqrt(2 * math.pi)
    chance = 0.5 * math.erfc(ratio / math.sqrt(2.0))
    loss = sigma * phi + mu * (1 - 0.5 * math.erfc(ratio / math.sqrt(2.0)))
    return Comparison(_unit(chance), max(loss, 0.0))


def _beta_sd(a: float, b: float) -> float:
    return math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))


def _beta_window(a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes and weights covering nearly all of Beta(a, b)'s mass."""
    mean = a / (a + b)
    sd = _beta_sd(a, b)
    low = max(mean - _WINDOW_SD * sd, 0.0)
    high = min(mean + _WINDOW_SD * sd, 1.0)
    half = 0.5 * (high - low)
    return low + half * (_NODES + 1.0), half * _WEIGHTS


def _beta_pdf(x: np.ndarray, a: float, b: float) -> np.ndarray:
    return np.exp(special.xlogy(a - 1, x) + special.xlog1py(b - 1, -x) - special.betaln(a, b))


def _unit(value: float) -> float:
    return min(max(value, 0.0), 1.0)
