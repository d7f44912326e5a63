"""Guardrail metrics and post-stratified figures in GET campaigns/<id>/results, against a direct
computation from what the test sent: decide (with a device and a referrer), impressions,
completions and closes through the events endpoint, signed orders. The expected statistics come
from statsmodels' regressions on the per-visitor values and numpy written out here."""

import math
import random
from datetime import timedelta

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest

from tests.helpers import decide, event, send_events
from tests.rewards.helpers import post_order
from widget_server.models.types import utcnow

PLANNED = 2000  # QUICK_AB's max_visitors_per_variant
#: (device, referrer) strata with their share of the traffic and their completion, close and
#: order rates in the control.
STRATA = {
    ("mobile", None): (0.35, 0.05, 0.55, 0.15),
    ("mobile", "https://www.google.com/"): (0.25, 0.10, 0.45, 0.25),
    ("desktop", None): (0.20, 0.15, 0.40, 0.30),
    ("desktop", "https://www.google.com/"): (0.20, 0.30, 0.30, 0.45),
}


def send_traffic(client, site, campaign_id, variants, visitors, seed, lift=1.2, spend=1.0):
    """Every visitor of every stratum through the public endpoints; what was sent, per visitor:
    ``{key: {variant, stratum, exposed, completed, closed, revenue, ordered}}``."""
    rng = random.Random(seed)
    control, treatment = variants
    keys = list(STRATA)
    sent = {}
    events = []
    for i in range(visitors):
        stratum = rng.choices(keys, [STRATA[k][0] for k in keys])[0]
        device, referrer = stratum
        key = f"g-{seed}-{i:05d}"
        extra = {"device": device} | ({"referrer": referrer} if referrer else {})
        answer = decide(client, site, visitor_id=key, **extra)
        assert answer.status_code == 200, answer.json
        offer = next(c for c in answer.json["campaigns"] if c["campaign_id"] == campaign_id)
        variant = offer["variant_id"]
        _, completion, close, _ = STRATA[stratum]
        if variant == treatment:
            completion *= lift
        visitor = {"variant": variant, "stratum": stratum, "exposed": rng.random() < 0.9}
        visitor |= {"completed": False, "closed": False, "revenue": 0.0, "ordered": False}
        if visitor["exposed"]:
            events.append(event("impression", key, campaign_id, variant))
            visitor["completed"] = rng.random() < completion
            visitor["closed"] = not visitor["completed"] and rng.random() < close
            if visitor["completed"]:
                events.append(event("complete", key, campaign_id, variant))
            if visitor["closed"]:
                events.append(event("close", key, campaign_id, variant))
        sent[key] = visitor
    for start in range(0, len(events), 100):
        assert send_events(client, site, events[start : start + 100]).status_code == 202
    number = 0
    for key, visitor in sent.items():
        buys = STRATA[visitor["stratum"]][3] * (spend if visitor["variant"] == treatment else 1)
        for _ in range(2 if rng.random() < buys * 0.3 else 1 if rng.random() < buys else 0):
            number += 1
            total = round(rng.lognormvariate(3.8, 0.5), 2)
            order = {"order_id": f"{seed}-{number}", "visitor_id": key, "total": total,
                     "currency": "EUR"}  # fmt: skip
            before = rng.random() < 0.1  # bought before the popup showed: counts nowhere
            if before:
                order["created_at"] = (utcnow() - timedelta(days=2)).isoformat()
            assert post_order(client, site, order).status_code == 201
            if visitor["exposed"] and not before:
                visitor["revenue"] += total
                visitor["ordered"] = True
    return {key: v for key, v in sent.items() if v["exposed"]}


def cells(sent, variants, value):
    """Per-visitor arrays: (treated 0/1, stratum index, value)."""
    keys = list(STRATA)
    rows = [
        (v["variant"] == variants[1], keys.index(v["stratum"]), value(v)) for v in sent.values()
    ]
    return tuple(np.array([r[i] for r in rows], float) for i in range(3))


def interacted(treated, stratum, y, cov_type):
    """Lin's regression: the post-stratified difference and its standard error."""
    dummies = np.stack([(stratum == s).astype(float) for s in range(1, len(STRATA))], axis=1)
    centred = dummies - dummies.mean(axis=0)
    design = np.column_stack([np.ones_like(y), treated, centred, centred * treated[:, None]])
    fit = sm.OLS(y, design).fit(cov_type=cov_type)
    return fit.params[1], fit.bse[1] ** 2


def standardised_means(treated, stratum, y):
    weights = np.array([(stratum == s).mean() for s in range(len(STRATA))])
    return [
        sum(weights[s] * y[(treated == arm) & (stratum == s)].mean() for s in range(len(STRATA)))
        for arm in (0, 1)
    ]


def information(treated, raw_variance, variance):
    n_control, n_treated = (treated == 0).sum(), (treated == 1).sum()
    harmonic = 2 / (1 / n_control + 1 / n_treated)
    return min(harmonic / PLANNED * raw_variance / variance, 1.0)


@pytest.fixture
def guarded_test(client, ab_test):
    """A survey with every guardrail metric named, and its traffic sent."""
    guardrails = [{"metric": m} for m in ("revenue", "order", "close")]
    site, campaign, variants = ab_test(guardrails=guardrails)
    sent = send_traffic(client, site, campaign["id"], variants, visitors=900, seed=51)
    return campaign, variants, sent


def test_the_adjusted_figures_are_the_post_stratified_ones_of_what_was_sent(admin, guarded_test):
    campaign, variants, sent = guarded_test
    body = admin.get(f"/api/v1/admin/campaigns/{campaign['id']}/results").json
    treated, stratum, completed = cells(sent, variants, lambda v: float(v["completed"]))
    for s in range(len(STRATA)):
        for arm in (0, 1):
            assert ((treated == arm) & (stratum == s)).sum() >= 50  # no stratum merged

    assert body["adjustment"] == {
        "method": "post_stratification", "used": True, "strata": 4, "note": None
    }  # fmt: skip
    means = standardised_means(treated, stratum, completed)
    weights = np.array([(stratum == s).mean() for s in range(len(STRATA))])
    difference, variance = 0.0, 0.0
    for s, weight in enumerate(weights):
        mine, control = (treated == 1) & (stratum == s), (treated == 0) & (stratum == s)
        pooled = completed[mine | control].mean()
        difference += weight * (completed[mine].mean() - completed[control].mean())
        variance += weight**2 * pooled * (1 - pooled) * (1 / mine.sum() + 1 / control.sum())
    counts = [int(completed[treated == arm].sum()) for arm in (1, 0)]
    visitors = [int((treated == arm).sum()) for arm in (1, 0)]
    z_raw, _ = proportions_ztest(counts, visitors)
    raw_difference = counts[0] / visitors[0] - counts[1] / visitors[1]
    raw_variance = (raw_difference / z_raw) ** 2
    z = difference / math.sqrt(variance)
    t = information(treated, raw_variance, variance)
    expected_p = max(2 * stats.norm.sf(abs(z) * math.sqrt(t)), 2 * stats.norm.sf(abs(z)))

    control, treatment = body["variants"]
    assert control["adjusted"]["rate"] == pytest.approx(means[0], rel=1e-9)
    assert treatment["adjusted"]["rate"] == pytest.approx(means[1], rel=1e-9)
    assert treatment["adjusted"]["lift"] == pytest.approx(means[1] / means[0] - 1, rel=1e-9)
    assert treatment["adjusted"]["p_value"] == pytest.approx(expected_p, rel=1e-6)
    assert treatment["adjusted"]["variance_ratio"] == pytest.approx(variance / raw_variance)
    # The raw figures stay beside them, untouched.
    assert treatment["rate"] == pytest.approx(counts[0] / visitors[0])
    assert [v["visitors"] for v in body["variants"]] == visitors[::-1]


#: Each guardrail's per-visitor value, the sandwich variance that equals its per-stratum
#: variance (HC2: s**2 / n for amounts, HC0: p (1 - p) / n for 0/1 values) and its direction.
GUARDRAILS = (
    ("revenue", lambda v: v["revenue"], "HC2", 1.0),
    ("order", lambda v: float(v["ordered"]), "HC0", 1.0),
    ("close", lambda v: float(v["closed"]), "HC0", -1.0),
)


def test_each_guardrail_is_the_always_valid_harm_test_of_what_was_sent(admin, guarded_test):
    campaign, variants, sent = guarded_test
    body = admin.get(f"/api/v1/admin/campaigns/{campaign['id']}/results").json
    assert sorted(g["metric"] for g in body["guardrails"]) == ["close", "order", "revenue"]
    for metric, value, cov_type, sign in GUARDRAILS:
        (result,) = [g for g in body["guardrails"] if g["metric"] == metric]
        check_guardrail(result, sent, variants, metric, value, cov_type, sign)


def check_guardrail(result, sent, variants, metric, value, cov_type, sign):
    """One guardrail's figures against statsmodels' regression and numpy."""
    treated, stratum, y = cells(sent, variants, value)
    difference, variance = interacted(treated, stratum, y, cov_type)
    mine, control = y[treated == 1], y[treated == 0]
    ddof = 1 if metric == "revenue" else 0
    raw_variance = mine.var(ddof=ddof) / len(mine) + control.var(ddof=ddof) / len(control)
    t = information(treated, raw_variance, variance)
    z = sign * difference / math.sqrt(variance)
    expected_p = min(1.0, 2 * stats.norm.cdf(min(z, 0.0) * math.sqrt(t)))
    means = standardised_means(treated, stratum, y)

    assert (result["variant_id"], result["lower_is_better"]) == (variants[1], sign < 0)
    assert result["adjusted"] is True
    assert result["control_mean"] == pytest.approx(means[0], rel=1e-9)
    assert result["mean"] == pytest.approx(means[1], rel=1e-9)
    assert result["change"] == pytest.approx(means[1] / means[0] - 1, rel=1e-9)
    assert result["p_value"] == pytest.approx(expected_p, rel=1e-6, abs=1e-12)
    assert result["harmed"] == (expected_p <= 0.05)
    assert result["verdict"] == ("harmed" if result["harmed"] else "ok")
    # The interval: the ratios r the same boundary does not reject, found on a grid here.
    k = stats.norm.ppf(0.975) / math.sqrt(t)
    weights = np.array([(stratum == s).mean() for s in range(len(STRATA))])
    per_arm = []
    for arm in (0, 1):
        cell_variance = 0.0
        for s, weight in enumerate(weights):
            values = y[(treated == arm) & (stratum == s)]
            cell_variance += weight**2 * values.var(ddof=ddof) / len(values)
        per_arm.append(cell_variance)
    grid = np.linspace(0.3, 2.0, 400_001)
    kept = grid[np.abs(means[1] - grid * means[0]) < k * np.sqrt(per_arm[1] + grid**2 * per_arm[0])]
    assert result["ci"] == pytest.approx([kept.min() - 1, kept.max() - 1], abs=1e-5)
