"""Bayesian figures against a direct Monte Carlo simulation of the posteriors."""

import numpy as np
import pytest
from scipy import integrate, special
from scipy import stats as scipy_stats

from ab import bayes

DRAWS = 400_000


@pytest.mark.parametrize(
    "table",
    [(0, 10, 0, 10), (3, 10, 1, 12), (120, 1000, 100, 1000), (1100, 10000, 1000, 10000),
     (2, 500, 30, 500), (50, 50, 0, 50), (1, 20000, 0, 20000), (5000, 20000, 5100, 20000)],
)  # fmt: skip
def test_beta_chance_and_loss_match_direct_simulation(table):
    x, n, xc, nc = table
    rng = np.random.default_rng(sum(table))
    variant = rng.beta(1 + x, 1 + n - x, DRAWS)
    control = rng.beta(1 + xc, 1 + nc - xc, DRAWS)
    result = bayes.beta_comparison(*table)
    chance = (variant > control).mean()
    loss = np.maximum(control - variant, 0)
    assert abs(result.chance_to_beat_control - chance) <= 4 * np.sqrt(0.25 / DRAWS)
    assert abs(result.expected_loss - loss.mean()) <= 4 * loss.std() / np.sqrt(DRAWS) + 1e-12


@pytest.mark.parametrize("params", [(10.0, 1.0, 9.0, 2.0), (5.0, 0.01, 5.0, 0.01), (0, 1, 3, 1)])
def test_normal_chance_and_loss_match_direct_simulation(params):
    mean, var, control_mean, control_var = params
    rng = np.random.default_rng(7)
    variant = rng.normal(mean, np.sqrt(var), DRAWS)
    control = rng.normal(control_mean, np.sqrt(control_var), DRAWS)
    result = bayes.normal_comparison(*params)
    loss = np.maximum(control - variant, 0)
    assert abs(result.chance_to_beat_control - (variant > control).mean()) <= 4 * np.sqrt(
        0.25 / DRAWS
    )
    assert abs(result.expected_loss - loss.mean()) <= 4 * loss.std() / np.sqrt(DRAWS) + 1e-12


def test_identical_data_gives_even_chance():
    assert bayes.beta_comparison(7, 70, 7, 70).chance_to_beat_control == pytest.approx(0.5)


@pytest.mark.parametrize(
    "table",
    [(9, 100, 100_000, 1_000_000), (100_000, 1_000_000, 9, 100), (1000, 10000, 3, 10),
     (2, 25, 2100, 20000), (17848, 178065, 1, 32)],
)  # fmt: skip
def test_posteriors_of_very_different_widths_match_direct_simulation(table):
    """Regression: quadrature over the wider posterior missed the narrow one (off by 0.05)."""
    x, n, xc, nc = table
    rng = np.random.default_rng(sum(table))
    variant = rng.beta(1 + x, 1 + n - x, DRAWS)
    control = rng.beta(1 + xc, 1 + nc - xc, DRAWS)
    result = bayes.beta_comparison(*table)
    loss = np.maximum(control - variant, 0)
    assert abs(result.chance_to_beat_control - (variant > control).mean()) <= 4 * np.sqrt(
        0.25 / DRAWS
    )
    assert abs(result.expected_loss - loss.mean()) <= 4 * loss.std() / np.sqrt(DRAWS) + 1e-12


def miller_chance_to_beat(a_x, b_x, a_y, b_y):
    """Evan Miller's exact sum for P(X > Y), X ~ Beta(a_x, b_x), Y ~ Beta(a_y, b_y), integer a_x."""
    i = np.arange(a_x)
    terms = (
        special.betaln(a_y + i, b_x + b_y)
        - np.log(b_x + i)
        - special.betaln(1 + i, b_x)
        - special.betaln(a_y, b_y)
    )
    return float(np.exp(terms).sum())


def random_tables(seed, count):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n, nc = (int(v) for v in rng.integers(1, 30_000, size=2) ** rng.uniform(0.3, 1, size=2))
        p, pc = rng.uniform(0, 0.4, size=2)
        yield int(rng.binomial(n, p)), n, int(rng.binomial(nc, pc)), nc


@pytest.mark.parametrize("table", list(random_tables(11, 200)))
def test_chance_to_beat_equals_evan_millers_exact_sum(table):
    x, n, xc, nc = table
    expected = miller_chance_to_beat(1 + x, 1 + n - x, 1 + xc, 1 + nc - xc)
    assert bayes.beta_comparison(*table).chance_to_beat_control == pytest.approx(
        min(expected, 1.0), abs=1e-8
    )


@pytest.mark.parametrize("table", list(random_tables(12, 40)))
def test_expected_loss_equals_adaptive_quadrature(table):
    x, n, xc, nc = table
    variant = scipy_stats.beta(1 + x, 1 + n - x)
    control = scipy_stats.beta(1 + xc, 1 + nc - xc)
    shifted = scipy_stats.beta(2 + x, 1 + n - x)  # x f_X(x) = m_X f_shifted(x)

    def integrand(y):  # f_Y(y) E[(y - X)+]
        return control.pdf(y) * (y * variant.cdf(y) - variant.mean() * shifted.cdf(y))

    low, high = control.ppf([1e-15, 1 - 1e-15])
    points = [m for m in (variant.mean(), control.mean()) if low < m < high]
    expected = integrate.quad(
        integrand, low, high, points=points, epsabs=1e-14, epsrel=1e-11, limit=1000
    )[0]
    assert bayes.beta_comparison(*table).expected_loss == pytest.approx(
        expected, rel=1e-6, abs=1e-11
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bayes.beta_comparison(-1, 10, 1, 10), "must not be negative"),
        (lambda: bayes.beta_comparison(11, 10, 1, 10), "must not exceed"),
        (lambda: bayes.beta_comparison(1, 10, 1, float("nan")), "whole number"),
        (lambda: bayes.beta_comparison(1, 10, 1, 10, prior_alpha=float("nan")), "prior_alpha"),
        (lambda: bayes.beta_comparison(1, 10, 1, 10, prior_beta=0), "prior_beta"),
        (lambda: bayes.normal_comparison(float("nan"), 1.0, 0.0, 1.0), "mean"),
        (lambda: bayes.normal_comparison(1.0, -1.0, 0.0, 1.0), "variances"),
        (lambda: bayes.normal_comparison(1.0, 1.0, 0.0, float("inf")), "control_variance"),
    ],
)
def test_bad_input_raises_value_error_naming_it(call, message):
    with pytest.raises(ValueError, match=message):
        call()
