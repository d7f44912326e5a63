"""Thompson-sampling weights: burn-in, floor, reproducibility, preference for the better arm."""

import pytest

from ab.bandit import thompson_weights
from ab.bayes import beta_comparison
from ab.policy import Arm


def arms(*counts, weights=None):
    weights = weights or [1.0] * len(counts)
    return [
        Arm(i + 1, n, x, float(x), float(x), w, i == 0)
        for i, ((n, x), w) in enumerate(zip(counts, weights, strict=True))
    ]


def test_burn_in_keeps_the_configured_weights():
    assert thompson_weights(arms((50, 5), (500, 80), weights=[1.0, 3.0])) == {1: 0.25, 2: 0.75}


def test_better_arm_gets_more_traffic_and_every_arm_keeps_the_floor():
    weights = thompson_weights(arms((2000, 200), (2000, 300), (2000, 190)), rng=1)
    assert weights[2] > 0.8
    assert min(weights.values()) >= 0.05 - 1e-12
    assert sum(weights.values()) == pytest.approx(1.0)


def test_weights_are_reproducible_with_a_seed():
    figures = arms((1000, 100), (1000, 110))
    assert thompson_weights(figures, rng=7) == thompson_weights(figures, rng=7)


def test_revenue_arms_use_normal_posteriors():
    revenue = [Arm(1, 500, 50, 2500.0, 250_000.0, 1, True), Arm(2, 500, 60, 4000.0, 400_000.0)]
    weights = thompson_weights(revenue, rng=3)
    assert weights[2] > weights[1]


@pytest.mark.parametrize(
    ("figures", "kwargs", "message"),
    [
        (arms((100, 10)), {}, "at least 2 arms"),
        (arms((100, 10), (100, 10)), {"floor": 0.6}, "floor"),
        (arms((100, 10), (100, 101)), {}, "conversions"),
    ],
)
def test_bad_input_raises_value_error(figures, kwargs, message):
    with pytest.raises(ValueError, match=message):
        thompson_weights(figures, **kwargs)


def test_two_arm_weights_follow_the_exact_chance_to_beat_control():
    """Cross-check: for two arms P(best) is the quadrature's chance to beat control."""
    figures = arms((1500, 150), (1500, 165))
    floor = 0.05
    weights = thompson_weights(figures, rng=5, floor=floor, draws=200_000)
    chance = beta_comparison(165, 1500, 150, 1500).chance_to_beat_control
    share = (weights[2] - floor) / (1 - 2 * floor)
    assert share == pytest.approx(chance, abs=4 * (0.25 / 200_000) ** 0.5)


def test_a_hopeless_arm_keeps_exactly_the_floor():
    weights = thompson_weights(arms((5000, 500), (5000, 1000), (5000, 100)), rng=2, floor=0.1)
    assert weights[3] == pytest.approx(0.1) and weights[1] == pytest.approx(0.1)
    assert weights[2] == pytest.approx(0.8)


def test_burn_in_counts_the_smallest_arm():
    figures = arms((99, 10), (5000, 900))
    assert thompson_weights(figures) == {1: 0.5, 2: 0.5}
    assert thompson_weights(figures, burn_in_visitors=99, rng=1)[2] > 0.9


@pytest.mark.parametrize(
    ("figures", "kwargs", "message"),
    [
        (arms((100, 10), (100, 10), weights=[float("nan"), 1.0]), {}, "weight"),
        (arms((100, 10), (100, 10), weights=[-1.0, 1.0]), {}, "weight"),
        (arms((100, 10), (100.5, 10)), {}, "whole number"),
        (arms((100, 10), (float("nan"), 10)), {}, "whole number"),
        (arms((100, 10), (100, 10)), {"floor": float("nan")}, "floor"),
        (
            [Arm(1, 200, 5, 10.0, 40.0, 1, True), Arm(2, 200, 5, float("nan"), 40.0)],
            {"metric": "revenue"},
            "finite",
        ),
    ],
)
def test_bad_input_raises_value_error_never_nan_weights(figures, kwargs, message):
    with pytest.raises(ValueError, match=message):
        thompson_weights(figures, **kwargs)
