"""The simulations with fixed seeds: A/A false positives, power, SRM detection.

Fewer repetitions than the README's statistics section (which has the 2,000-repetition
figures); bounds allow three Monte-Carlo standard errors.
"""

import math

import numpy as np
import pytest

from ab.simulate import main, simulate_promotions, srm_detection
from ab.stats import srm_test

REPS = 2000


def se(p, reps=REPS):
    return math.sqrt(p * (1 - p) / reps)


@pytest.mark.parametrize("variants", [2, 4])
@pytest.mark.parametrize("max_visitors", [10_000, 20_000])
def test_a_a_sequential_promotes_at_most_alpha_and_naive_inflates(variants, max_visitors):
    results = simulate_promotions(
        [0.10] * variants, reps=REPS, max_visitors_per_variant=max_visitors, rng=variants
    )
    assert results["sequential"].promoted <= 0.05 + 3 * se(0.05)
    assert results["msprt"].promoted <= 0.05 + 3 * se(0.05)
    assert results["naive"].promoted > 0.12  # the inflation of peeking at a fixed-horizon test
    assert results["naive-any"].promoted > 0.30


def test_power_for_10_to_11_percent_within_20000_per_variant():
    results = simulate_promotions(
        [0.10, 0.11], reps=1000, max_visitors_per_variant=20_000, rng=11, rules=("sequential",)
    )
    assert results["sequential"].correct >= 0.85 + 0.0  # observed ~0.94 with se 0.008


def test_power_for_10_to_12_percent():
    results = simulate_promotions([0.10, 0.12], reps=1000, max_visitors_per_variant=20_000, rng=12)
    assert results["sequential"].correct > 0.98
    assert 3000 < results["sequential"].median_visitors_per_variant < 9000


def test_srm_of_45_55_is_caught_by_2000_visitors_and_rarely_false():
    detected = srm_detection(0.45, totals=(2000, 5000), rng=1)
    healthy = srm_detection(0.5, totals=(2000, 5000), rng=2)
    assert detected[2000] > 0.8 and detected[5000] > 0.99
    assert max(healthy.values()) <= 0.001 + 3 * se(0.001)


@pytest.mark.parametrize(
    "argv",
    [
        ["aa", "--variants", "2", "--reps", "200", "--seed", "1"],
        ["power", "--lift", "0.2", "--reps", "200", "--json"],
        ["srm", "--reps", "200"],
    ],
)
def test_command_line_runs(argv, capsys):
    assert main(argv) == 0
    assert capsys.readouterr().out.strip()


def test_rates_are_validated():
    with pytest.raises(ValueError, match="rates"):
        simulate_promotions([0.1])


@pytest.mark.parametrize(("weights", "seed"), [([1, 3], 13), ([1, 1, 2], 14)])
def test_a_a_with_unequal_weights_stays_at_most_alpha(weights, seed):
    """Looks run to 1.5 times the design's information, so the design's end is exercised."""
    results = simulate_promotions(
        [0.10] * len(weights), reps=REPS, max_visitors_per_variant=40_000, weights=weights,
        rng=seed, rules=("sequential", "naive"),
    )  # fmt: skip
    assert results["sequential"].promoted <= 0.05 + 3 * se(0.05)
    assert results["naive"].promoted > 0.12


def test_srm_detection_agrees_with_the_policy_srm_test():
    served = np.random.default_rng(4).binomial(2000, 0.45, size=REPS)
    flagged = np.mean([srm_test([int(a), 2000 - int(a)], [1.0, 1.0]) < 0.001 for a in served])
    assert srm_detection(0.45, totals=(2000,), rng=4)[2000] == flagged


def test_command_line_takes_weights(capsys):
    assert main(["aa", "--weights", "1,3", "--reps", "100", "--json"]) == 0
    assert '"sequential"' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["aa", "--variants", "3", "--weights", "1,3", "--reps", "100"])
