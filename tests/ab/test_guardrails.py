"""Guardrail metrics: the always-valid harm test, its interval, its direction per metric, and
its error rate under continuous looks, each against scipy or a direct numpy computation."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from ab.guardrails import (
    Guardrail,
    boundary,
    harm_pvalue,
    judge_guardrail,
    ratio_interval,
)
from ab.stratification import StratumFigures


def test_harm_p_value_is_twice_the_normal_tail_of_the_b_value():
    rng = np.random.default_rng(1)
    estimate, variance, t = rng.normal(size=50), rng.uniform(0.1, 2, 50), rng.uniform(0, 1.5, 50)
    z = estimate / np.sqrt(variance)
    expected = np.minimum(2 * scipy_stats.norm.cdf(np.minimum(z, 0) * np.sqrt(np.minimum(t, 1))), 1)
    assert harm_pvalue(estimate, variance, t) == pytest.approx(expected, rel=1e-12)
    # Never below the fixed-horizon one-sided p-value of the same data.
    assert np.all(harm_pvalue(estimate, variance, t) >= scipy_stats.norm.cdf(z) - 1e-15)


def test_harm_is_flagged_at_most_alpha_of_the_time_when_looked_at_after_every_visitor():
    """The guardrail exactly at its margin (revenue per visitor 2% lower, max_drop 2%), looked at
    after each of 2,000 visitors per variant: the share of runs ever flagged."""
    rng = np.random.default_rng(2)
    runs, visitors, planned = 4000, 2000, 2000
    control = rng.exponential(10.0, size=(runs, visitors)) * (rng.random((runs, visitors)) < 0.3)
    variant = 0.98 * rng.exponential(10.0, size=(runs, visitors))
    variant *= rng.random((runs, visitors)) < 0.3
    n = np.arange(1, visitors + 1)
    mean_c, mean_v = control.cumsum(1) / n, variant.cumsum(1) / n
    var_c = ((control**2).cumsum(1) - n * mean_c**2) / np.maximum(n - 1, 1) / n
    var_v = ((variant**2).cumsum(1) - n * mean_v**2) / np.maximum(n - 1, 1) / n
    factor = 1 - 0.02
    p = harm_pvalue(mean_v - factor * mean_c, var_v + factor**2 * var_c, n / planned)
    looked = n >= 30  # a variance needs a few visitors; the policy needs hundreds
    flagged = (p[:, looked] <= 0.05).any(axis=1).mean()
    assert flagged <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / runs)


def test_the_boundary_is_the_critical_value_over_the_square_root_of_information():
    assert boundary(0.25, 0.05) == pytest.approx(scipy_stats.norm.ppf(0.975) / 0.5)
    assert boundary(4.0, 0.05) == pytest.approx(scipy_stats.norm.ppf(0.975))  # capped at t = 1


def test_ratio_interval_is_the_set_of_ratios_the_test_does_not_reject():
    mean, variance, control_mean, control_variance, k = 9.1, 0.09, 10.0, 0.1, 2.4
    grid = np.linspace(0.5, 1.5, 200_001)
    z = np.abs(mean - grid * control_mean) / np.sqrt(variance + grid**2 * control_variance)
    kept = grid[z < k]
    lower, upper = ratio_interval(mean, variance, control_mean, control_variance, k)
    assert lower == pytest.approx(kept.min(), abs=1e-5)
    assert upper == pytest.approx(kept.max(), abs=1e-5)


def test_ratio_interval_is_unbounded_when_the_control_is_not_distinguishable_from_zero():
    assert ratio_interval(0.1, 0.01, 0.1, 0.01, 2.0) == (None, None)


def figures(n, mean, rng, order_rate=0.3):
    """(visitors, sum, sum of squares) of revenue-like values."""
    values = rng.exponential(mean / order_rate, n) * (rng.random(n) < order_rate)
    return n, float(values.sum()), float((values**2).sum())


def test_a_clear_revenue_drop_is_harmed_and_its_interval_lies_below_the_margin():
    rng = np.random.default_rng(3)
    result = judge_guardrail(
        Guardrail("revenue"), figures(20000, 9.0, rng), figures(20000, 10.0, rng), 2, 0.05, 1.0
    )
    assert result.verdict == "harmed" and result.harmed and result.p_value <= 0.05
    assert result.ci[1] < 0 and result.change == pytest.approx(
        result.mean / result.control_mean - 1
    )


def test_the_verdict_agrees_with_the_interval_everywhere():
    rng = np.random.default_rng(4)
    for change in np.linspace(-0.2, 0.1, 31):
        result = judge_guardrail(
            Guardrail("revenue", 0.02),
            figures(3000, 10.0 * (1 + change), rng),
            figures(3000, 10.0, rng),
            2,
            0.05,
            0.5,
        )
        assert result.harmed == (result.ci[1] is not None and result.ci[1] < -0.02)


def test_a_drop_within_max_drop_is_not_harm_however_many_visitors():
    n, control, variant = 10**7, 0.1, 0.097  # the order rate 3% lower, measured exactly
    result = judge_guardrail(
        Guardrail("order", 0.05),
        (n, variant * n, variant * n),
        (n, control * n, control * n),
        2,
        0.05,
        1.0,
    )
    assert not result.harmed and result.ci[0] > -0.05
    strict = judge_guardrail(
        Guardrail("order"), (n, variant * n, variant * n), (n, control * n, control * n), 2, 0.05, 1
    )
    assert strict.harmed


@pytest.mark.parametrize(("variant_rate", "harmed"), [(0.44, True), (0.36, False)])
def test_for_the_close_rate_a_rise_is_the_harm(variant_rate, harmed):
    n = 20000
    result = judge_guardrail(
        Guardrail("close"),
        (n, variant_rate * n, variant_rate * n),
        (n, 0.40 * n, 0.40 * n),
        2,
        0.05,
        1.0,
    )
    assert result.lower_is_better and result.harmed is harmed


def test_no_conversions_yet_is_no_data_not_a_verdict():
    result = judge_guardrail(Guardrail("revenue"), (500, 0.0, 0.0), (500, 0.0, 0.0), 2, 0.05, 0.1)
    assert (result.verdict, result.harmed, result.p_value, result.ci) == (
        "no data",
        False,
        None,
        (None, None),
    )


def test_strata_that_explain_the_guardrail_give_more_information():
    """Repeat customers spend far more: within strata the same drop is seen with more
    information than the raw figures give."""
    rng = np.random.default_rng(5)

    def arm(scale):
        strata, totals = [], np.zeros(3)
        for name, n, mean in (("new", 4000, 2.0), ("customer", 800, 20.0), ("repeat", 200, 80.0)):
            values = rng.exponential(mean * scale, n) * (rng.random(n) < 0.5)
            strata.append(StratumFigures((name,), n, float(values.sum()), float((values**2).sum())))
            totals += (n, values.sum(), (values**2).sum())
        return (int(totals[0]), totals[1], totals[2]), strata

    (variant, variant_strata), (control, control_strata) = arm(0.93), arm(1.0)
    raw = judge_guardrail(Guardrail("revenue"), variant, control, 2, 0.05, 0.25)
    adjusted = judge_guardrail(
        Guardrail("revenue"), variant, control, 2, 0.05, 0.25, variant_strata, control_strata
    )
    assert adjusted.adjusted and not raw.adjusted
    assert adjusted.information > raw.information == 0.25


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"metric": "completion"}, "guardrail metric must be one of revenue, order, close"),
        ({"metric": "revenue", "max_drop": 1.0}, r"max_drop must be a number in \[0, 1\)"),
        ({"metric": "revenue", "max_drop": -0.1}, "max_drop"),
    ],
)
def test_guardrails_refuse_unknown_metrics_and_bad_drops(fields, message):
    with pytest.raises(ValueError, match=message):
        Guardrail(**fields)
