"""Post-stratification: the same comparison, less noise, from what was known before the popup.

Visitors differ before they see anything (a repeat customer on a desktop answers a survey far more
often than a new visitor on a phone); randomisation spreads those differences over the variants
only on average. Post-stratification compares the variants within strata of such pre-exposure
covariates and weighs the strata by their share of all visitors, which removes the part of the
noise the strata explain. It needs per variant and stratum only the sufficient statistics
(visitors, sum, sum of squares), which the rollups keep.

Every function works on numpy arrays whose last two axes are (arms, strata), so the simulation
(:mod:`ab.simulate`) runs the policy's own arithmetic over repetitions and looks at once;
:func:`collapse_figures` is the policy's entry point for plain dataclasses.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import stats

__all__ = [
    "MIN_STRATUM_VISITORS",
    "StratumFigures",
    "Collapsed",
    "hierarchy",
    "collapse",
    "collapse_figures",
    "stratified_means",
    "contrast",
]

#: A stratum is analysed on its own only when every arm has at least this many visitors in it;
#: smaller ones are merged into their parent stratum (see :func:`collapse`).
MIN_STRATUM_VISITORS = 50


@dataclass(frozen=True)
class StratumFigures:
    """One variant's figures in one stratum.

    ``key`` names the stratum by its covariates, coarsest first (``("customer", "mobile",
    "search", "emotional")``): strata too small to analyse are merged with the strata sharing a
    shorter prefix. ``value_sum`` is the number of conversions for a 0/1 metric (and then
    ``value_sum_squares`` equals it).
    """

    key: tuple[str, ...]
    visitors: int
    value_sum: float
    value_sum_squares: float


@dataclass(frozen=True)
class Collapsed:
    """Per-arm, per-stratum figures after small strata were merged: arrays of shape (arms, C)."""

    visitors: np.ndarray
    sums: np.ndarray
    squares: np.ndarray

    @property
    def strata(self) -> int:
        """How many strata the comparison uses."""
        return int(np.count_nonzero(self.visitors.sum(axis=0)))


def hierarchy(keys: Sequence[tuple[str, ...]]) -> list[np.ndarray]:
    """The parent index arrays of :func:`collapse` for strata named by ``keys``.

    Level 0 is ``keys`` itself; level ``l + 1`` groups the strata of level ``l`` by their key
    without its last component, up to a single root (the empty key). ``parents[l][i]`` is the
    index at level ``l + 1`` of stratum ``i`` of level ``l``.

    :raise ValueError: keys of different lengths, or a key given twice.
    """
    keys = [tuple(key) for key in keys]
    if len(set(keys)) != len(keys):
        raise ValueError("keys: a stratum key appears twice")
    depth = {len(key) for key in keys}
    if len(depth) > 1:
        raise ValueError("keys: every stratum key needs the same number of components")
    parents = []
    level = keys
    for length in range(next(iter(depth), 0) - 1, -1, -1):
        coarser = sorted({key[:length] for key in level})
        index = {key: i for i, key in enumerate(coarser)}
        parents.append(np.array([index[key[:length]] for key in level], dtype=np.intp))
        level = coarser
    if not parents or len(level) != 1:
        # Flat keys (or none): every stratum goes straight to the root.
        parents.append(np.zeros(len(level), dtype=np.intp))
    return parents


def collapse(visitors, sums, squares, parents, min_visitors: int = MIN_STRATUM_VISITORS):
    """Merge strata too small to analyse, up the hierarchy of ``parents``.

    Parameters
    ----------
    visitors, sums, squares : array, shape (..., arms, strata)
        Per arm and stratum: visitors, the sum of their values and of the squared values.
    parents : list of int arrays
        From :func:`hierarchy`: how the strata of each level group into the next, to one root.
    min_visitors : int
        A stratum stands alone when every arm has at least this many visitors in it.

    Returns
    -------
    (visitors, sums, squares) : arrays, shape (..., arms, C)
        The strata kept at each level (columns of zeros where a stratum was merged), then the
        root's remainder. A remainder that is itself too small is added to the largest kept
        stratum; with nothing kept, the remainder is every visitor (no adjustment).

    Notes
    -----
    Which strata are merged depends on the visitor counts only, never on the outcomes, so the
    estimator stays unbiased given the partition; the partition may change from look to look.
    """
    current = [np.asarray(a, float) for a in (visitors, sums, squares)]
    kept = [[], [], []]
    for parent in parents:
        size = int(parent.max()) + 1 if len(parent) else 1
        big = current[0].min(axis=-2, keepdims=True) >= min_visitors
        grouping = np.zeros((len(parent), size))
        grouping[np.arange(len(parent)), parent] = 1.0
        for i, figures in enumerate(current):
            kept[i].append(np.where(big, figures, 0.0))
            current[i] = np.where(big, 0.0, figures) @ grouping
    columns = [np.concatenate([*kept[i], current[i]], axis=-1) for i in range(3)]
    remainder_n = current[0][..., 0]  # (..., arms)
    totals = columns[0][..., :-1].sum(axis=-2)  # (..., kept columns)
    if totals.shape[-1]:
        merge = (
            (remainder_n.min(axis=-1) < min_visitors)
            & (remainder_n.sum(axis=-1) > 0)
            & (totals.max(axis=-1) > 0)
        )
        largest = np.arange(totals.shape[-1]) == np.argmax(totals, axis=-1)[..., None]
        into = (merge[..., None] & largest)[..., None, :]  # (..., 1, kept columns)
        for column in columns:
            remainder = column[..., -1:]
            column[..., :-1] += np.where(into, remainder, 0.0)
            column[..., -1:] = np.where(merge[..., None, None], 0.0, remainder)
    return tuple(columns)


def collapse_figures(
    arms_strata: Sequence[Sequence[StratumFigures]], min_visitors: int = MIN_STRATUM_VISITORS
) -> Collapsed:
    """:func:`collapse` for plain figures: one sequence of strata per arm (keys may differ
    between arms; a stratum an arm lacks counts zero for it).

    :raise ValueError: negative or non-finite figures, or keys of different lengths.
    """
    keys = sorted({tuple(s.key) for strata in arms_strata for s in strata})
    index = {key: i for i, key in enumerate(keys)}
    shape = (len(arms_strata), len(keys))
    visitors, sums, squares = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for arm, strata in enumerate(arms_strata):
        for stratum in strata:
            name = f"stratum {'/'.join(stratum.key) or '-'}"
            count = stats.check_count(stratum.visitors, "visitors", name)
            for label, value in (("value_sum", stratum.value_sum),
                                 ("value_sum_squares", stratum.value_sum_squares)):  # fmt: skip
                if not (stats.is_real(value) and math.isfinite(value) and value >= 0):
                    raise ValueError(f"{name}: {label} must be a finite number >= 0, got {value!r}")
            column = index[tuple(stratum.key)]
            visitors[arm, column] += count
            sums[arm, column] += float(stratum.value_sum)
            squares[arm, column] += float(stratum.value_sum_squares)
    if not keys:
        return Collapsed(visitors, sums, squares)
    columns = collapse(visitors, sums, squares, hierarchy(keys), min_visitors)
    used = columns[0].sum(axis=0) > 0
    return Collapsed(*(c[:, used] for c in columns))


def _variances(visitors, sums, squares, binary: bool):
    """Per-visitor variance in each cell: ``p (1 - p)`` for 0/1 values (as the z-test has it),
    the unbiased sample variance for amounts (as Welch's test has it); 0 for empty cells."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(visitors > 0, sums / visitors, 0.0)
        if binary:
            variance = mean * (1.0 - mean)
        else:
            centred = np.maximum(squares - sums * mean, 0.0)
            variance = np.where(visitors > 1, centred / (visitors - 1), 0.0)
    return mean, np.maximum(variance, 0.0)


def _weights(visitors):
    """Each stratum's share of all visitors of all arms (the population's estimated make-up)."""
    per_stratum = visitors.sum(axis=-2)
    total = per_stratum.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, per_stratum / total, 0.0)


def stratified_means(visitors, sums, squares, binary: bool):
    """Post-stratified mean of each arm and its variance: ``(means, variances)``, shape
    (..., arms).

    ``mean_a = sum_s w_s ybar_{a,s}`` with ``w_s`` the stratum's share of all visitors, and
    ``Var = sum_s w_s**2 sigma_{a,s}**2 / n_{a,s}`` (given the strata's counts).
    """
    visitors = np.asarray(visitors, float)
    mean, variance = _variances(visitors, np.asarray(sums, float), np.asarray(squares, float),
                                binary)  # fmt: skip
    weights = _weights(visitors)[..., None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        per_cell = np.where(visitors > 0, variance / visitors, 0.0)
    return (weights * mean).sum(axis=-1), (weights**2 * per_cell).sum(axis=-1)


def contrast(visitors, sums, squares, arm: int, control: int, binary: bool,
             control_factor: float = 1.0, pooled: bool = False):  # fmt: skip
    """``sum_s w_s (ybar_{arm,s} - control_factor * ybar_{control,s})`` and its variance.

    Parameters
    ----------
    visitors, sums, squares : array, shape (..., arms, strata)
        As :func:`collapse` returns them (or a single stratum: the raw comparison).
    arm, control : int
        Indices on the arms axis.
    binary : bool
        Whether the values are 0/1 conversions.
    control_factor : float
        Multiplies the control's mean: ``1 - max_drop`` tests a margin (:mod:`ab.guardrails`).
    pooled : bool
        Use the two arms' pooled variance in each stratum, the variance under "no difference"
        (as the two-proportion z-test does); only with ``control_factor`` 1.

    Returns
    -------
    (estimate, variance) : arrays of shape (...)

    Notes
    -----
    The strata's weights are their shares of all visitors of all arms, so every comparison of a
    campaign standardises to the same population. With one stratum this is exactly the raw
    difference of means and the variance of the z-test (``pooled``) or of Welch's test.

    References
    ----------
    .. [1] Miratrix, L. W., Sekhon, J. S., Yu, B. (2013). Adjusting treatment effect estimates
       by post-stratification in randomized experiments. JRSS B 75(2), 369-396.
    .. [2] Deng, A., Xu, Y., Kohavi, R., Walker, T. (2013). Improving the sensitivity of online
       controlled experiments by utilizing pre-experiment data. WSDM '13.
    """
    visitors = np.asarray(visitors, float)
    sums = np.asarray(sums, float)
    squares = np.asarray(squares, float)
    weights = _weights(visitors)
    mean, variance = _variances(visitors, sums, squares, binary)
    n_arm, n_control = visitors[..., arm, :], visitors[..., control, :]
    estimate = (weights * (mean[..., arm, :] - control_factor * mean[..., control, :])).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse_arm = np.where(n_arm > 0, 1.0 / n_arm, 0.0)
        inverse_control = np.where(n_control > 0, 1.0 / n_control, 0.0)
        if pooled:
            pair = n_arm + n_control
            pooled_sum = sums[..., arm, :] + sums[..., control, :]
            pooled_squares = squares[..., arm, :] + squares[..., control, :]
            _, pooled_variance = _variances(pair, pooled_sum, pooled_squares, binary)
            cell = pooled_variance * (inverse_arm + inverse_control)
        else:
            cell = (variance[..., arm, :] * inverse_arm
                    + control_factor**2 * variance[..., control, :] * inverse_control)  # fmt: skip
    return estimate, (weights**2 * cell).sum(axis=-1)
