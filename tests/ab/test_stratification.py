"""Post-stratification from per-stratum sufficient statistics, checked against statsmodels'
regressions on the raw per-visitor values and against direct numpy computations."""

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import proportions_ztest

from ab.stratification import (
    StratumFigures,
    collapse,
    collapse_figures,
    contrast,
    hierarchy,
    stratified_means,
)


def visitors_by_stratum(rng, sizes, means, spread):
    """Per-visitor revenue-like values: ``{(arm, stratum): array}``."""
    return {
        (arm, s): rng.gamma(2.0, means[arm][s] / 2.0, size=sizes[arm][s]) + spread * rng.random()
        for arm in range(len(sizes))
        for s in range(len(sizes[arm]))
    }


def sufficient(values, arms, strata):
    shape = (arms, strata)
    n, total, squares = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for (arm, s), v in values.items():
        n[arm, s], total[arm, s], squares[arm, s] = len(v), v.sum(), (v**2).sum()
    return n, total, squares


def interacted_regression(values, strata):
    """Lin's (2013) fully interacted regression: y ~ treated + centred stratum dummies and their
    interactions with treated; its coefficient on treated is the post-stratified difference."""
    rows = [(arm, s, y) for (arm, s), v in values.items() for y in v]
    arm = np.array([r[0] for r in rows], float)
    stratum = np.array([r[1] for r in rows])
    y = np.array([r[2] for r in rows])
    dummies = np.stack([(stratum == s).astype(float) for s in range(1, strata)], axis=1)
    centred = dummies - dummies.mean(axis=0)
    design = np.column_stack([np.ones_like(arm), arm, centred, centred * arm[:, None]])
    return sm.OLS(y, design).fit(cov_type="HC2")


def test_the_post_stratified_difference_and_variance_equal_lins_interacted_regression():
    rng = np.random.default_rng(7)
    sizes = [[400, 150, 60], [380, 170, 55]]
    means = [[10.0, 30.0, 80.0], [11.0, 33.0, 85.0]]
    values = visitors_by_stratum(rng, sizes, means, 1.0)
    n, total, squares = sufficient(values, 2, 3)
    estimate, variance = contrast(n, total, squares, 1, 0, binary=False)
    fit = interacted_regression(values, 3)
    assert estimate == pytest.approx(fit.params[1], rel=1e-9)
    # HC2 of a saturated cell-means model is exactly the Neyman variance s**2 / n per cell.
    assert np.sqrt(variance) == pytest.approx(fit.bse[1], rel=1e-9)


def test_one_stratum_is_the_raw_two_proportion_z_test():
    n = np.array([[2000.0], [2100.0]])
    conversions = np.array([[200.0], [250.0]])
    estimate, variance = contrast(n, conversions, conversions, 1, 0, binary=True, pooled=True)
    z, _ = proportions_ztest([250, 200], [2100, 2000])
    assert estimate / np.sqrt(variance) == pytest.approx(z, rel=1e-12)


def test_one_stratum_is_welchs_test_for_amounts():
    rng = np.random.default_rng(3)
    a, b = rng.exponential(20, 300), rng.exponential(24, 280)
    n = np.array([[len(a)], [len(b)]], float)
    total = np.array([[a.sum()], [b.sum()]])
    squares = np.array([[(a**2).sum()], [(b**2).sum()]])
    estimate, variance = contrast(n, total, squares, 1, 0, binary=False)
    expected = scipy_stats.ttest_ind(b, a, equal_var=False)
    assert estimate / np.sqrt(variance) == pytest.approx(expected.statistic, rel=1e-9)


def test_stratified_means_weigh_each_stratum_by_its_share_of_all_visitors():
    n = np.array([[300.0, 100.0], [200.0, 200.0]])
    rate = np.array([[0.1, 0.5], [0.2, 0.4]])
    conversions = n * rate
    means, variances = stratified_means(n, conversions, conversions, binary=True)
    weights = n.sum(axis=0) / n.sum()  # 500 / 800 and 300 / 800
    assert means == pytest.approx((weights * rate).sum(axis=1))
    expected = (weights**2 * rate * (1 - rate) / n).sum(axis=1)
    assert variances == pytest.approx(expected)


def test_the_variance_formula_matches_the_spread_of_the_estimate_over_repeated_draws():
    """Binary outcomes in three strata: the formula's average against the variance of the
    estimator over 4,000 simulated tests (the strata's counts drawn too)."""
    rng = np.random.default_rng(11)
    shares, rates = np.array([0.6, 0.3, 0.1]), np.array([0.03, 0.12, 0.40])
    per_arm, draws = 2000, 4000
    n = rng.multinomial(per_arm, shares, size=(draws, 2)).astype(float)
    conversions = rng.binomial(n.astype(int), rates).astype(float)
    estimate, variance = contrast(n, conversions, conversions, 1, 0, binary=True, pooled=True)
    assert estimate.mean() == pytest.approx(0.0, abs=4 * np.sqrt(variance.mean() / draws))
    assert variance.mean() == pytest.approx(estimate.var(), rel=0.08)
    raw = tuple(a.sum(axis=-1, keepdims=True) for a in (n, conversions, conversions))
    raw_estimate, raw_variance = contrast(*raw, 1, 0, binary=True, pooled=True)
    # The strata explain part of the noise: the adjusted estimate varies less than the raw one,
    # and the formulas say so too.
    assert estimate.var() < 0.9 * raw_estimate.var()
    assert variance.mean() < 0.9 * raw_variance.mean()


def test_hierarchy_groups_keys_by_their_prefixes_up_to_one_root():
    keys = [("new", "mobile"), ("new", "desktop"), ("repeat", "mobile")]
    parents = hierarchy(keys)
    assert [p.tolist() for p in parents] == [[0, 0, 1], [0, 0]]


@pytest.mark.parametrize(
    ("keys", "message"),
    [([("a",), ("a",)], "appears twice"), ([("a",), ("a", "b")], "same number")],
)
def test_hierarchy_refuses_bad_keys(keys, message):
    with pytest.raises(ValueError, match=message):
        hierarchy(keys)


def test_small_strata_merge_into_their_parent_then_into_the_largest_kept_stratum():
    keys = [("new", "mobile"), ("new", "desktop"), ("repeat", "mobile"), ("repeat", "desktop")]
    n = np.array([[400.0, 30.0, 30.0, 10.0], [390.0, 25.0, 35.0, 12.0]])
    kept = collapse(n, n * 0.1, n * 0.1, hierarchy(keys), min_visitors=50)[0]
    columns = [tuple(c) for c in kept.T if c.any()]
    # new/desktop (30, 25) is too small alone; repeat's two (40, 47) too; together at the root
    # (70, 72) they stand as one more stratum.
    assert columns == [(400.0, 390.0), (70.0, 72.0)]
    assert kept.sum(axis=-1) == pytest.approx(n.sum(axis=-1))


def test_a_remainder_too_small_joins_the_largest_stratum_and_nothing_is_lost():
    keys = [("a",), ("b",), ("c",)]
    n = np.array([[500.0, 300.0, 3.0], [480.0, 310.0, 0.0]])
    kept = collapse(n, n, n, hierarchy(keys), min_visitors=50)[0]
    assert sorted(tuple(c) for c in kept.T if c.any()) == [(300.0, 310.0), (503.0, 480.0)]


def test_collapse_figures_takes_plain_figures_per_arm():
    control = [
        StratumFigures(("new",), 300, 30.0, 30.0),
        StratumFigures(("repeat",), 100, 40.0, 40.0),
    ]
    variant = [
        StratumFigures(("new",), 310, 40.0, 40.0),
        StratumFigures(("repeat",), 90, 45.0, 45.0),
    ]
    collapsed = collapse_figures([control, variant])
    assert collapsed.strata == 2
    assert collapsed.visitors.tolist() == [[300.0, 100.0], [310.0, 90.0]]


@pytest.mark.parametrize(
    ("stratum", "message"),
    [
        (StratumFigures(("x",), -1, 0.0, 0.0), "visitors must not be negative"),
        (StratumFigures(("x",), 10, float("nan"), 0.0), "value_sum must be a finite"),
        (StratumFigures(("x",), 10, 1.0, -1.0), "value_sum_squares must be a finite"),
    ],
)
def test_collapse_figures_refuses_bad_figures_naming_the_stratum(stratum, message):
    with pytest.raises(ValueError, match=f"stratum x: {message}"):
        collapse_figures([[stratum], [stratum]])
