"""Sequential p-values: never below the fixed-horizon p-value, and valid under repeated looks."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special

from ab import sequential, stats


@given(
    st.integers(1, 50_000), st.integers(1, 50_000), st.floats(0.001, 0.999),
    st.floats(0.001, 0.999), st.floats(0.01, 1.0),
)  # fmt: skip
def test_always_valid_p_values_are_never_below_the_fixed_horizon_p_value(n, n_c, p, p_c, tau):
    x, x_c = round(n * p), round(n_c * p_c)
    fixed = stats.two_proportion_ztest(x, n, x_c, n_c)
    t = sequential.information_fraction(n, n_c, 20_000)
    assert sequential.spending_pvalue(fixed.statistic, t) >= fixed.p_value - 1e-15
    pooled = (x + x_c) / (n + n_c)
    variance = pooled * (1 - pooled) * (1 / n + 1 / n_c)
    msprt = sequential.msprt_pvalue(x / n - x_c / n_c, variance, tau * pooled)
    assert msprt >= fixed.p_value - 1e-15


def test_spending_p_value_equals_fixed_p_value_at_the_planned_maximum():
    assert sequential.spending_pvalue(2.5, 1.0) == pytest.approx(2 * special.ndtr(-2.5))
    assert sequential.spending_pvalue(2.5, 1.7) == sequential.spending_pvalue(2.5, 1.0)


def test_obf_spending_spends_alpha_by_the_planned_maximum():
    assert sequential.obf_spending(1.0, 0.05) == pytest.approx(0.05)
    assert sequential.obf_spending(0.25, 0.05) == pytest.approx(2 * special.ndtr(-1.959964 * 2))


def test_continuous_boundary_is_conservative_for_the_looks_taken():
    # 200 looks (every 100 visitors up to 20,000): exact one-sided error by numerical integration.
    fractions = np.arange(1, 201) / 200
    bounds = sequential.obf_boundary(fractions, 0.05)
    error = sequential.crossing_probability(fractions, bounds)
    assert 0.04 < error <= 0.05


def test_crossing_probability_of_a_single_look_is_the_normal_tail():
    assert sequential.crossing_probability([1.0], [1.96]) == pytest.approx(special.ndtr(-1.96))
    with_drift = sequential.crossing_probability([1.0], [1.96], drift=1.0)
    assert with_drift == pytest.approx(special.ndtr(1.0 - 1.96))


def test_crossing_probability_of_two_looks_matches_simulation():
    rng = np.random.default_rng(3)
    w1 = rng.normal(0, np.sqrt(0.5), 1_000_000)
    w2 = w1 + rng.normal(0, np.sqrt(0.5), 1_000_000)
    crossed = ((w1 / np.sqrt(0.5) >= 2.0) | (w2 >= 2.0)).mean()
    exact = sequential.crossing_probability([0.5, 1.0], [2.0, 2.0])
    assert exact == pytest.approx(crossed, abs=4 * np.sqrt(crossed / 1_000_000))


def test_msprt_without_variance_gives_no_evidence():
    assert sequential.msprt_pvalue(0.0, 0.0, 0.01) == 1.0


def test_visitors_to_cross_reaches_the_level():
    needed = sequential.visitors_to_cross(1.5, 4000, 20_000, 0.05)
    z_then = 1.5 * np.sqrt(needed / 4000)
    assert sequential.spending_pvalue(z_then, needed / 20_000) == pytest.approx(0.05)
    assert sequential.visitors_to_cross(-1.0, 4000, 20_000, 0.05) is None


@pytest.mark.parametrize(
    ("fractions", "bounds"), [([0.5, 0.2], [2, 2]), ([0.5], [2, 2]), ([0.0, 1.0], [2, 2])]
)
def test_crossing_probability_refuses_bad_looks(fractions, bounds):
    with pytest.raises(ValueError, match="fractions"):
        sequential.crossing_probability(fractions, bounds)


def test_looking_past_the_planned_information_would_inflate_the_error():
    """Why the policy stops at t = 1: a 1:3 split looked at every 100 control visitors up to
    20,000 (t = 1.5) with the p-value held at the fixed-horizon one beyond t = 1."""
    t = 1.5 * np.arange(100, 20_001, 100) / 20_000
    bounds = sequential.obf_boundary(np.minimum(t, 1.0), 0.05)
    assert sequential.crossing_probability(t, bounds) > 0.065
    assert sequential.crossing_probability(t[t <= 1], bounds[t <= 1]) <= 0.05
