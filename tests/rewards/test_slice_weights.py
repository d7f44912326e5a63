"""The slice is drawn from a secure source with the variant's weights."""

import random
from collections import Counter

import pytest
from scipy.stats import chi2

from widget_server.services.rewards import spin

#: A run fails by chance once in a million: the bar for a test on a source with no fixed seed.
FALSE_ALARM = 1e-6
DRAWS = 20_000


def chi_square_statistic(counts: list[int], weights: list[float]) -> float:
    total = sum(counts)
    expected = [total * w / sum(weights) for w in weights]
    return sum((c - e) ** 2 / e for c, e in zip(counts, expected, strict=True))


@pytest.mark.parametrize(
    "weights",
    [[30, 35, 10, 25], [1, 1], [0.5, 3, 0.25, 6, 1.25, 9]],
)
def test_observed_slice_frequencies_match_the_weights(weights):
    counts = Counter(spin.choose_slice(weights) for _ in range(DRAWS))
    observed = [counts[i] for i in range(len(weights))]
    statistic = chi_square_statistic(observed, weights)
    assert statistic < chi2.isf(FALSE_ALARM, df=len(weights) - 1), observed


def test_chi_square_check_catches_a_biased_wheel():
    """The same check fails for draws made with the wrong weights (it has teeth)."""
    rng = random.Random(7)
    weights = [30, 35, 10, 25]
    biased = [30, 35, 13, 22]
    counts = Counter(rng.choices(range(4), weights=biased)[0] for _ in range(DRAWS))
    statistic = chi_square_statistic([counts[i] for i in range(4)], weights)
    assert statistic > chi2.isf(FALSE_ALARM, df=3)


def test_zero_weight_slices_are_never_drawn():
    drawn = {spin.choose_slice([0, 2, 0, 1]) for _ in range(2_000)}
    assert drawn == {1, 3}


def test_the_spin_draws_from_the_operating_system_random_source():
    assert isinstance(spin._secure_random, random.SystemRandom)


@pytest.mark.parametrize("weights", [[0, 0], [], [1, -1]])
def test_weights_that_cannot_be_drawn_from_raise_value_error(weights):
    with pytest.raises(ValueError, match="weights"):
        spin.choose_slice(weights)
