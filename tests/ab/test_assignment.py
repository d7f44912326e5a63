"""Assignment: stable, uniform, independent between campaigns, sticky under holdout changes."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from ab.assignment import bucket, choose_variant

IDS = [f"visitor-{i}" for i in range(100_000)]


def test_bucket_values_are_pinned_across_versions():
    # Changing these would move every stored-but-not-yet-assigned visitor: never do it.
    assert bucket("campaign-1", "visitor-1") == 0.06352991061261265
    assert bucket("", "x") == 0.365187185973249
    assert bucket("seed", "ünïcode") == 0.16080254483115541


def test_bucket_is_the_same_in_another_process():
    code = "from ab.assignment import bucket; print(repr(bucket('campaign-1', 'visitor-1')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert float(out) == bucket("campaign-1", "visitor-1")


@given(st.text(max_size=40), st.text(min_size=1, max_size=40))
def test_bucket_is_stable_and_in_unit_interval(seed, visitor_id):
    value = bucket(seed, visitor_id)
    assert 0.0 <= value < 1.0
    assert bucket(seed, visitor_id) == value


def test_bucket_separates_seed_and_visitor_id():
    assert bucket("a:b", "c") != bucket("a", "b:c")


def test_buckets_are_uniform_over_100000_ids():
    draws = np.array([bucket("campaign-uniform", v) for v in IDS])
    counts = np.bincount((draws * 100).astype(int), minlength=100)
    assert stats.chisquare(counts).pvalue > 0.001


def test_variant_shares_follow_weights_over_100000_ids():
    weights = [(1, 1.0), (2, 2.0), (3, 0.0), (4, 1.0)]
    chosen = [choose_variant("campaign-weights", v, weights) for v in IDS]
    counts = [chosen.count(i) for i in (1, 2, 4)]
    assert chosen.count(3) == 0
    assert stats.chisquare(counts, [25_000, 50_000, 25_000]).pvalue > 0.001


def test_two_campaigns_assign_independently():
    first = [choose_variant("campaign-a", v, [(1, 1), (2, 1), (3, 1)]) for v in IDS]
    second = [choose_variant("campaign-b", v, [(1, 1), (2, 1), (3, 1)]) for v in IDS]
    table = np.zeros((3, 3))
    for a, b in zip(first, second, strict=True):
        table[a - 1, b - 1] += 1
    assert stats.chi2_contingency(table).pvalue > 0.001


def test_holdout_share_and_independence_from_variant():
    chosen = [choose_variant("campaign-h", v, [(1, 1), (2, 1)], holdout=0.1) for v in IDS]
    held = sum(c is None for c in chosen)
    assert stats.binomtest(held, len(IDS), 0.1).pvalue > 0.001
    assert stats.binomtest(chosen.count(1), len(IDS) - held, 0.5).pvalue > 0.001


def test_changing_holdout_does_not_reshuffle_the_others():
    weights = [(1, 1.0), (2, 1.0), (3, 1.0)]
    before = {v: choose_variant("campaign-s", v, weights, holdout=0.05) for v in IDS[:5000]}
    after = {v: choose_variant("campaign-s", v, weights, holdout=0.20) for v in IDS[:5000]}
    for v, variant in after.items():
        if variant is not None:
            assert before[v] == variant
        if before[v] is None:
            assert variant is None  # growing the holdout keeps those already held out


def test_raising_one_weight_moves_visitors_only_towards_it():
    old = {v: choose_variant("campaign-w", v, [(1, 1.0), (2, 1.0)]) for v in IDS[:5000]}
    new = {v: choose_variant("campaign-w", v, [(1, 1.0), (2, 3.0)]) for v in IDS[:5000]}
    assert all(new[v] == 2 for v in old if old[v] != new[v])


@pytest.mark.parametrize(
    ("weights", "holdout", "message"),
    [
        ([], 0.0, "at least one"),
        ([(1, -1.0), (2, 1.0)], 0.0, "finite and >= 0"),
        ([(1, float("nan"))], 0.0, "finite and >= 0"),
        ([(1, 0.0), (2, 0.0)], 0.0, "above 0"),
        ([(1, 1.0), (1, 1.0)], 0.0, "appears twice"),
        ([(1,)], 0.0, "pairs"),
        ([(1, 1.0)], 1.0, "holdout"),
        ([(1, 1.0)], -0.1, "holdout"),
    ],
)
def test_bad_input_raises_value_error_naming_it(weights, holdout, message):
    with pytest.raises(ValueError, match=message):
        choose_variant("seed", "visitor", weights, holdout=holdout)


def test_empty_visitor_id_is_refused():
    with pytest.raises(ValueError, match="visitor_id"):
        bucket("seed", "")
