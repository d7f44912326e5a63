"""Fixtures for the ab/ tests: arms built from plain counts."""

import pytest

from ab.policy import Arm


@pytest.fixture
def make_arms():
    """Make arms from ``[(visitors, conversions), ...]``, the first the control."""

    def make(counts, weights=None):
        weights = weights or [1.0] * len(counts)
        return [
            Arm(
                variant_id=i + 1,
                visitors=n,
                conversions=x,
                value_sum=float(x),
                value_sum_squares=float(x),
                weight=w,
                is_control=i == 0,
                name="ABCDEFGH"[i],
            )
            for i, ((n, x), w) in enumerate(zip(counts, weights, strict=True))
        ]

    return make
