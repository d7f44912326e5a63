"""Bayesian figures against a direct Monte Carlo simulation of the posteriors."""

import numpy as np
import pytest

from ab import bayes

DRAWS = 400_000


@pytest.mark.parametrize(
    "table",
    [(0, 10, 0, 10), (3, 10, 1, 12), (120, 1000, 100, 1000), (1100, 10000, 1000, 10000),
     (2, 500, 30, 500), (50, 50, 0, 50), (1, 20000, 0, 20000), (5000, 20000, 5100, 20000)],
)  # fmt: skip
def test_beta_chance_and_loss_match_direct_simulation(table):
    x, n, xc, nc = table
    rng = np.random.default_rng(sum(table))
    variant = rng.beta(1 + x, 1 + n - x, DRAWS)
    control = rng.beta(1 + xc, 1 + nc - xc, DRAWS)
    result = bayes.beta_comparison(*table)
    chance = (variant > control).mean()
    loss = np.maximum(control - variant, 0)
    assert abs(result.chance_to_beat_control - chance) <= 4 * np.sqrt(0.25 / DRAWS)
    assert abs(result.expected_loss - loss.mean()) <= 4 * loss.std() / np.sqrt(DRAWS) + 1e-12


@pytest.mark.parametrize("params", [(10.0, 1.0, 9.0, 2.0), (5.0, 0.01, 5.0, 0.01), (0, 1, 3, 1)])
def test_normal_chance_and_loss_match_direct_simulation(params):
    mean, var, control_mean, control_var = params
    rng = np.random.default_rng(7)
    variant = rng.normal(mean, np.sqrt(var), DRAWS)
    control = rng.normal(control_mean, np.sqrt(control_var), DRAWS)
    result = bayes.normal_comparison(*params)
    loss = np.maximum(control - variant, 0)
    assert abs(result.chance_to_beat_control - (variant > control).mean()) <= 4 * np.sqrt(
        0.25 / DRAWS
    )
    assert abs(result.expected_loss - loss.mean()) <= 4 * loss.std() / np.sqrt(DRAWS) + 1e-12


def test_identical_data_gives_even_chance():
    assert bayes.beta_comparison(7, 70, 7, 70).chance_to_beat_control == pytest.approx(0.5)
