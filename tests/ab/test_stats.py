"""ab.stats against independent implementations (statsmodels, scipy) on many random tables."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from ab import stats


def random_tables(seed, count, max_visitors):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n1, n2 = rng.integers(1, max_visitors, size=2)
        p1, p2 = rng.uniform(0, 1, size=2) ** 2
        yield int(rng.binomial(n1, p1)), int(n1), int(rng.binomial(n2, p2)), int(n2)


@pytest.mark.parametrize("table", list(random_tables(1, 300, 5000)))
def test_ztest_equals_statsmodels(table):
    x1, n1, x2, n2 = table
    ours = stats.two_proportion_ztest(x1, n1, x2, n2)
    if x1 + x2 in (0, n1 + n2):
        assert (ours.statistic, ours.p_value) == (0.0, 1.0)
        return
    z, p = proportions_ztest([x1, x2], [n1, n2])
    assert ours.statistic == pytest.approx(z, rel=1e-9, abs=1e-12)
    assert ours.p_value == pytest.approx(p, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("table", list(random_tables(2, 300, 60)))
def test_fisher_exact_equals_scipy(table):
    x1, n1, x2, n2 = table
    expected = scipy_stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]]).pvalue
    assert stats.fisher_exact_test(x1, n1, x2, n2).p_value == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("seed", range(100))
def test_welch_from_sufficient_statistics_equals_scipy_on_raw_values(seed):
    rng = np.random.default_rng(seed)
    a = rng.lognormal(3, 1, size=rng.integers(2, 400)) * (rng.uniform(size=1) < 0.5)
    b = np.where(rng.uniform(size=rng.integers(2, 400)) < 0.3, rng.lognormal(3, 1), 0.0)
    ours = stats.welch_ttest(moments(a), moments(b))
    if a.std() == 0 and b.std() == 0:
        return
    expected = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert ours.p_value == pytest.approx(expected.pvalue, abs=1e-9)
    assert ours.statistic == pytest.approx(expected.statistic, rel=1e-9)


def moments(values):
    return stats.Moments(len(values), float(values.sum()), float((values**2).sum()))


@pytest.mark.parametrize("table", list(random_tables(3, 100, 3000)))
def test_wilson_interval_equals_statsmodels(table):
    x1, n1, _, _ = table
    lo, hi = proportion_confint(x1, n1, alpha=0.05, method="wilson")
    assert stats.wilson_interval(x1, n1) == pytest.approx((lo, hi), abs=1e-12)


def test_mean_interval_equals_scipy_t_interval():
    values = np.random.default_rng(4).lognormal(2, 1, 300)
    expected = scipy_stats.t.interval(0.95, len(values) - 1, values.mean(), scipy_stats.sem(values))
    assert stats.mean_interval(moments(values)) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("seed", range(30))
def test_holm_equals_statsmodels(seed):
    p = np.random.default_rng(seed).uniform(0, 0.2, size=1 + seed % 6)
    expected = multipletests(p, method="holm")[1]
    assert stats.holm(list(p)) == pytest.approx(list(expected), abs=1e-12)


@pytest.mark.parametrize("seed", range(30))
def test_srm_equals_scipy_chisquare(seed):
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.1, 3, size=2 + seed % 3)
    visitors = rng.multinomial(5000, weights / weights.sum())
    expected = scipy_stats.chisquare(visitors, 5000 * weights / weights.sum()).pvalue
    assert stats.srm_test(list(visitors), list(weights)) == pytest.approx(expected, rel=1e-9)


def test_srm_flags_traffic_to_a_zero_weight_variant():
    assert stats.srm_test([100, 5], [1.0, 0.0]) == 0.0
    assert stats.srm_test([100, 0, 100], [1.0, 0.0, 1.0]) == 1.0


def test_lift_interval_covers_the_true_lift_about_95_percent_of_the_time():
    rng = np.random.default_rng(5)
    n, p_c, p_t = 5000, 0.10, 0.12
    covered = 0
    for _ in range(2000):
        x_t, x_c = rng.binomial(n, p_t), rng.binomial(n, p_c)
        r_t, r_c = x_t / n, x_c / n
        lift = stats.relative_lift(r_t, r_t * (1 - r_t) / n, r_c, r_c * (1 - r_c) / n)
        covered += lift.lower <= p_t / p_c - 1 <= lift.upper
    assert abs(covered / 2000 - 0.95) < 3 * math.sqrt(0.95 * 0.05 / 2000)


def test_lift_is_undefined_without_control_conversions():
    assert stats.relative_lift(0.1, 1e-4, 0.0, 0.0) == stats.IntervalResult(None, None, None)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: stats.wilson_interval(-1, 10), "must not be negative"),
        (lambda: stats.wilson_interval(11, 10), "must not exceed"),
        (lambda: stats.wilson_interval(0, 0), "visitors must be > 0"),
        (lambda: stats.two_proportion_ztest(1, 10, 0, 0), "need visitors"),
        (lambda: stats.fisher_exact_test(1, 10, 3.5, 10), "whole number"),
        (
            lambda: stats.welch_ttest(stats.Moments(1, 1.0, 1.0), stats.Moments(3, 1, 1)),
            "at least 2",
        ),
        (
            lambda: stats.welch_ttest(stats.Moments(3, 9.0, 1.0), stats.Moments(3, 1, 1)),
            "sum_squares",
        ),
        (lambda: stats.holm([0.5, 1.5]), "p-values"),
        (lambda: stats.srm_test([1, 2], [1.0]), "same length"),
        (lambda: stats.srm_test([1, 2], [0.0, 0.0]), "weight"),
    ],
)
def test_bad_input_raises_value_error_naming_it(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_welch_without_any_variance():
    same = stats.welch_ttest(stats.Moments(5, 0.0, 0.0), stats.Moments(5, 0.0, 0.0))
    apart = stats.welch_ttest(stats.Moments(5, 5.0, 5.0), stats.Moments(5, 0.0, 0.0))
    assert (same.p_value, apart.p_value, apart.statistic) == (1.0, 0.0, None)


def balanced_and_larger_tables(seed, count):
    """Equal groups (whose tables tie in probability) and groups of up to 2,000."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        n1 = int(rng.integers(1, 2000))
        n2 = n1 if i % 2 else int(rng.integers(1, 2000))
        p = rng.uniform(0, 0.5)
        yield int(rng.binomial(n1, p)), n1, int(rng.binomial(n2, p)), n2


@pytest.mark.parametrize("table", list(balanced_and_larger_tables(6, 200)))
def test_fisher_exact_equals_scipy_on_balanced_and_larger_tables(table):
    x1, n1, x2, n2 = table
    expected = scipy_stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]]).pvalue
    assert stats.fisher_exact_test(x1, n1, x2, n2).p_value == pytest.approx(expected, abs=1e-9)


def test_whole_number_floats_count_as_counts():
    """Regression: 3.0 conversions (a count read from JSON) crashed the exact test's indexing."""
    assert stats.fisher_exact_test(3.0, 10.0, 1.0, 12.0) == stats.fisher_exact_test(3, 10, 1, 12)
    assert stats.two_proportion_ztest(3.0, 10.0, 1, 12) == stats.two_proportion_ztest(3, 10, 1, 12)
    assert stats.check_counts(np.int64(10), np.float64(3.0)) == (10, 3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: stats.check_counts(None, 0), "visitors must be a whole number"),
        (lambda: stats.check_counts("10", 1), "visitors must be a whole number"),
        (lambda: stats.check_counts(10, float("nan")), "conversions must be a whole number"),
        (lambda: stats.check_counts(float("inf"), 1), "visitors must be a whole number"),
        (lambda: stats.wilson_interval(1, 10, alpha=float("nan")), "alpha"),
        (lambda: stats.needs_exact_test(0, 0, 1, 10), "need visitors"),
        (lambda: stats.srm_test([-5, 10], [1.0, 1.0]), "must not be negative"),
        (lambda: stats.srm_test([float("nan"), 10], [1.0, 1.0]), "whole number"),
        (lambda: stats.srm_test([5, 10], [float("nan"), 1.0]), "weights"),
        (lambda: stats.relative_lift(float("nan"), 1e-4, 0.1, 1e-4), "mean"),
        (lambda: stats.relative_lift(0.1, 1e-4, 0.1, -1e-4), "variances"),
        (lambda: stats.holm([0.1, float("nan")]), "p-values"),
        (
            lambda: stats.welch_ttest(stats.Moments(5, float("nan"), 1.0), stats.Moments(3, 1, 1)),
            "finite",
        ),
    ],
)
def test_more_bad_input_raises_value_error_never_nan(call, message):
    with pytest.raises(ValueError, match=message):
        call()
