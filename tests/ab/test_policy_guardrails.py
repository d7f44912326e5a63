"""The policy with guardrail metrics and post-stratified figures: holds, reasons, which figures
decide, and the adjusted p-value against statsmodels' regression on the raw values."""

import json

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as scipy_stats

from ab.policy import Arm, Settings, StratumFigures, decide

OPEN = dict(min_running_days=0, min_visitors_per_variant=100)


def revenue_arm(variant_id, n, order_rate, rng, control=False, name=None):
    values = rng.gamma(4.0, 12.5, n) * (rng.random(n) < order_rate)
    return Arm(variant_id, n, int((values > 0).sum()), float(values.sum()),
               float((values**2).sum()), 1.0, control, name)  # fmt: skip


def guarded(arms, order_rates, rng):
    """Revenue figures for the same variants as ``arms``."""
    return {
        "revenue": [
            revenue_arm(a.variant_id, a.visitors, rate, rng, a.is_control)
            for a, rate in zip(arms, order_rates, strict=True)
        ]
    }


def test_a_winner_worse_on_revenue_is_held_and_the_reason_says_why(make_arms):
    arms = make_arms([(8000, 800), (8000, 1000)])
    decision = decide(
        arms,
        running_days=10,
        guardrails=[{"metric": "revenue"}],
        guardrail_arms=guarded(arms, (0.30, 0.24), np.random.default_rng(1)),
        **OPEN,
    )
    assert (decision.action, decision.winner_variant_id, decision.held_variant_id) == (
        "hold",
        None,
        2,
    )
    assert decision.reason.startswith("Variant B beats control (+25.0%, p = ")
    assert "but is worse than the control on revenue per visitor (-" in decision.reason
    assert "automatic promotion is held while that harm is significant" in decision.reason
    (result,) = decision.guardrails
    assert result.harmed and result.variant_id == 2 and result.metric == "revenue"


def test_a_winner_not_harmed_on_its_guardrail_is_promoted(make_arms):
    arms = make_arms([(8000, 800), (8000, 1000)])
    decision = decide(
        arms,
        running_days=10,
        guardrails=[{"metric": "revenue"}],
        guardrail_arms=guarded(arms, (0.30, 0.30), np.random.default_rng(2)),
        **OPEN,
    )
    assert decision.action == "promote" and decision.winner_variant_id == 2
    assert decision.guardrails[0].verdict == "ok"


def test_the_best_unharmed_significant_variant_is_promoted_instead_of_a_harmed_one(make_arms):
    arms = make_arms([(8000, 800), (8000, 1100), (8000, 1000)])
    decision = decide(
        arms,
        running_days=10,
        guardrails=[{"metric": "revenue"}],
        guardrail_arms=guarded(arms, (0.30, 0.22, 0.30), np.random.default_rng(3)),
        **OPEN,
    )
    assert decision.action == "promote" and decision.winner_variant_id == 3


def test_a_held_winner_at_the_horizon_stops_and_keeps_the_control(make_arms):
    arms = make_arms([(20000, 2000), (20000, 2400)])
    decision = decide(
        arms,
        running_days=61,
        guardrails=[{"metric": "revenue"}],
        guardrail_arms=guarded(arms, (0.30, 0.24), np.random.default_rng(4)),
        **OPEN,
    )
    assert decision.action == "stop" and "worse than the control on revenue" in decision.reason


def test_harm_on_a_variant_that_is_not_ahead_is_told_but_changes_nothing(make_arms):
    arms = make_arms([(3000, 300), (3000, 300)])
    decision = decide(
        arms,
        running_days=10,
        guardrails=[{"metric": "revenue"}],
        guardrail_arms=guarded(arms, (0.30, 0.20), np.random.default_rng(5)),
        **OPEN,
    )
    assert decision.action == "continue" and decision.held_variant_id is None
    assert "Variant B is worse than the control on revenue per visitor" in decision.reason


def test_guardrails_need_their_figures(make_arms):
    with pytest.raises(ValueError, match="no figures for the guardrail 'order'"):
        decide(make_arms([(100, 10), (100, 12)]), running_days=1, guardrails=[{"metric": "order"}])


@pytest.mark.parametrize(
    ("guardrails", "message"),
    [
        ([{"metric": "completion"}], "guardrail metric must be one of"),
        ([{"metric": "order"}, {"metric": "order"}], "each metric at most once"),
        ([{"metric": "order", "max_loss": 1}], "unknown field 'max_loss'"),
        ("order", "must be a list"),
    ],
)
def test_settings_refuse_bad_guardrails(guardrails, message):
    with pytest.raises(ValueError, match=message):
        Settings(guardrails=guardrails)


def test_callers_without_strata_or_guardrails_see_the_raw_decision_as_before(make_arms):
    decision = decide(make_arms([(8000, 800), (8000, 1000)]), running_days=10, **OPEN)
    assert decision.guardrails == () and not decision.adjustment.used
    assert decision.adjustment.note == "no strata were recorded"
    assert all(arm.adjusted is None for arm in decision.arms)
    json.dumps(decision.as_dict(), allow_nan=False)


def stratified_revenue(rng, scale, sizes=(3000, 700, 300), means=(2.0, 15.0, 60.0)):
    """An arm's per-visitor revenue by stratum (new, customer, repeat), and its figures."""
    values = {}
    for name, n, mean in zip(("new", "customer", "repeat"), sizes, means, strict=True):
        values[name] = rng.gamma(2.0, mean * scale / 2.0, n) * (rng.random(n) < 0.5)
    strata = tuple(
        StratumFigures((name,), len(v), float(v.sum()), float((v**2).sum()))
        for name, v in values.items()
    )
    every = np.concatenate(list(values.values()))
    return values, strata, every


def test_the_adjusted_p_value_is_the_spending_p_value_of_lins_regression():
    """Revenue per visitor in three strata: the post-stratified z from statsmodels' interacted
    regression (HC2), the information fraction grown by the variance it saves (raw variance
    from scipy's Welch test), then the design's p-value written out here."""
    rng = np.random.default_rng(6)
    control_values, control_strata, control_all = stratified_revenue(rng, 1.0)
    variant_values, variant_strata, variant_all = stratified_revenue(rng, 1.08)
    arms = [
        Arm(1, len(control_all), int((control_all > 0).sum()), float(control_all.sum()),
            float((control_all**2).sum()), 1.0, True, "A", control_strata),
        Arm(2, len(variant_all), int((variant_all > 0).sum()), float(variant_all.sum()),
            float((variant_all**2).sum()), 1.0, False, "B", variant_strata),
    ]  # fmt: skip
    decision = decide(arms, running_days=10, metric="revenue", **OPEN)

    rows = [(arm, s, y) for arm, values in enumerate((control_values, variant_values))
            for s, stratum in enumerate(values) for y in values[stratum]]  # fmt: skip
    treated = np.array([r[0] for r in rows], float)
    stratum = np.array([r[1] for r in rows])
    dummies = np.stack([(stratum == s).astype(float) for s in (1, 2)], axis=1)
    centred = dummies - dummies.mean(axis=0)
    design = np.column_stack([np.ones_like(treated), treated, centred, centred * treated[:, None]])
    fit = sm.OLS(np.array([r[2] for r in rows]), design).fit(cov_type="HC2")
    z = fit.params[1] / fit.bse[1]
    raw_variance = control_all.var(ddof=1) / len(control_all) + variant_all.var(ddof=1) / len(
        variant_all
    )
    harmonic = 2 / (1 / len(control_all) + 1 / len(variant_all))
    t = min(harmonic / 20_000 * raw_variance / fit.bse[1] ** 2, 1.0)
    expected = max(2 * scipy_stats.norm.sf(abs(z) * np.sqrt(t)), 2 * scipy_stats.norm.sf(abs(z)))

    assert decision.adjustment.used and decision.adjustment.strata == 3
    adjusted = decision.arms[1].adjusted
    assert adjusted.raw_p_value == pytest.approx(expected, rel=1e-6)
    assert adjusted.variance_ratio == pytest.approx(fit.bse[1] ** 2 / raw_variance, rel=1e-6)
    assert adjusted.p_value == adjusted.raw_p_value  # one comparison: Holm changes nothing
    assert decision.arms[1].raw_p_value != pytest.approx(adjusted.raw_p_value)  # raw kept apart


def test_bayesian_methods_report_adjusted_figures_but_judge_the_raw_ones():
    rng = np.random.default_rng(7)
    arms = []
    for variant_id, scale in ((1, 1.0), (2, 1.1)):
        _, strata, every = stratified_revenue(rng, scale)
        arms.append(Arm(variant_id, len(every), int((every > 0).sum()), float(every.sum()),
                        float((every**2).sum()), 1.0, variant_id == 1, None, strata))  # fmt: skip
    decision = decide(arms, running_days=10, metric="revenue", method="bayesian", **OPEN)
    assert not decision.adjustment.used
    assert decision.adjustment.note == "the bayesian method judges the raw figures"
    assert decision.arms[1].adjusted.rate is not None


def test_strata_too_small_leave_the_raw_figures_in_charge():
    arms = [
        Arm(1, 300, 30, 30.0, 30.0, 1.0, True, None,
            (StratumFigures(("a",), 280, 28.0, 28.0), StratumFigures(("b",), 20, 2.0, 2.0))),
        Arm(2, 300, 36, 36.0, 36.0, 1.0, False, None,
            (StratumFigures(("a",), 290, 34.0, 34.0), StratumFigures(("b",), 10, 2.0, 2.0))),
    ]  # fmt: skip
    decision = decide(arms, running_days=10, **OPEN)
    assert not decision.adjustment.used and decision.adjustment.strata == 1
    assert "fewer than 50 visitors" in decision.adjustment.note


def test_strata_that_do_not_add_up_to_the_arm_are_refused():
    arms = [
        Arm(1, 300, 30, 30.0, 30.0, 1.0, True, None, (StratumFigures(("a",), 200, 20.0, 20.0),)),
        Arm(2, 300, 36, 36.0, 36.0, 1.0, False, None, (StratumFigures(("a",), 300, 36.0, 36.0),)),
    ]
    with pytest.raises(ValueError, match="variant 1 .completion.: its strata add up to 200"):
        decide(arms, running_days=10, **OPEN)
