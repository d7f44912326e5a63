"""Sticky, weighted assignment of visitors to variants, and the holdout.

The hash decides only *new* visitors: the service stores each assignment the first time a
visitor is bucketed and never asks again, so changing weights later moves nobody already
assigned (SPEC §2, "Assignment"). Given the same seed and visitor id, the functions here answer
the same on every process, machine and Python version.
"""

import hashlib
import math
from collections.abc import Sequence

__all__ = ["bucket", "choose_variant", "phase_seed"]

_SCALE = float(2**64)


def bucket(seed: str, visitor_id: str) -> float:
    """Map ``(seed, visitor_id)`` to a number in [0, 1), uniformly and stably.

    Parameters
    ----------
    seed : str
        Per-campaign (or per-purpose) seed, e.g. ``"c7f1:variant"``.
    visitor_id : str
        The visitor's id.

    Returns
    -------
    float
        The first 8 bytes of the BLAKE2b digest of ``seed``, a unit separator and
        ``visitor_id`` (UTF-8), read as a big-endian unsigned integer and divided by 2**64.

    Notes
    -----
    BLAKE2b (RFC 7693) is used as a fast, fixed, fully specified hash, not for secrecy: it is the
    same in every Python build (``hashlib``), unlike :func:`hash`, which is salted per process.
    The unit separator ``\\x1f`` keeps ``("a:b", "c")`` and ``("a", "b:c")`` apart. Different seeds
    give independent draws for the same visitor, which is how the holdout, the variant choice and
    different campaigns are kept independent of one another.

    References
    ----------
    .. [1] Aumasson, Neves, Wilcox-O'Hearn, Winnerlein, "BLAKE2: simpler, smaller, fast as MD5",
       2013; RFC 7693.
    """
    if not isinstance(seed, str):
        raise ValueError(f"seed must be a string, got {type(seed).__name__}")
    if not isinstance(visitor_id, str) or not visitor_id:
        raise ValueError("visitor_id must be a non-empty string")
    digest = hashlib.blake2b(f"{seed}\x1f{visitor_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def phase_seed(seed: str, phase: int) -> str:
    """The seed that assigns visitors in ``phase`` of an experiment re-randomised then.

    Parameters
    ----------
    seed : str
        The campaign's seed.
    phase : int
        The phase that re-randomised the assignments (1 or more); 0 or 1: none did.

    Returns
    -------
    str
        ``seed`` itself for phases 0 and 1, else ``seed + ":phase<N>"``: an independent draw
        per re-randomised phase, the same on every process.
    """
    if not isinstance(phase, int) or phase < 0:
        raise ValueError(f"phase must be an integer >= 0, got {phase!r}")
    return seed if phase <= 1 else f"{seed}:phase{phase}"


def choose_variant(
    seed: str,
    visitor_id: str,
    weights: Sequence[tuple[int, float]],
    holdout: float = 0.0,
) -> int | None:
    """The variant a new visitor gets, or ``None`` if the visitor falls in the holdout.

    Parameters
    ----------
    seed : str
        The campaign's seed.
    visitor_id : str
        The visitor's id.
    weights : sequence of (variant_id, weight)
        Traffic weights, each finite and >= 0, not all zero; only their ratios matter. A variant
        of weight 0 is never chosen.
    holdout : float, default 0.0
        Share of visitors in [0, 1) who see no variant.

    Returns
    -------
    int or None
        The chosen variant id, or ``None`` for the holdout.

    Raises
    ------
    ValueError
        On empty or negative or all-zero weights, duplicate ids, or a holdout outside [0, 1).

    Notes
    -----
    The holdout uses the draw ``bucket(seed + ":holdout", visitor_id)`` and the variant the
    independent draw ``bucket(seed + ":variant", visitor_id)``, so changing the holdout share does
    not reshuffle which variant the remaining visitors get, and changing weights only moves the
    boundaries between variants (visitors near a moved boundary change; the others do not). The
    service stores assignments, so either change affects only visitors not yet assigned.
    """
    cumulative = _cumulative_weights(weights)
    if not isinstance(holdout, int | float) or not 0.0 <= holdout < 1.0:
        raise ValueError(f"holdout must be a share in [0, 1), got {holdout!r}")
    if holdout > 0.0 and bucket(f"{seed}:holdout", visitor_id) < holdout:
        return None
    draw = bucket(f"{seed}:variant", visitor_id) * cumulative[-1][1]
    for variant_id, upper in cumulative:
        if draw < upper:
            return variant_id
    return cumulative[-1][0]  # draw == total after rounding: the last variant with weight


def _cumulative_weights(weights: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    """Validate ``weights`` and return ``[(variant_id, running total)]`` of positive weights."""
    if not weights:
        raise ValueError("weights must list at least one (variant_id, weight) pair")
    seen: set = set()
    cumulative: list[tuple[int, float]] = []
    total = 0.0
    for pair in weights:
        try:
            variant_id, weight = pair
            weight = float(weight)
        except (TypeError, ValueError):
            raise ValueError(
                f"weights: expected (variant_id, weight) pairs, got {pair!r}"
            ) from None
        if variant_id in seen:
            raise ValueError(f"weights: variant id {variant_id!r} appears twice")
        seen.add(variant_id)
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weights: weight of variant {variant_id!r} must be finite and >= 0")
        if weight > 0:
            total += weight
            cumulative.append((variant_id, total))
    if not cumulative:
        raise ValueError("weights: at least one variant needs a weight above 0")
    return cumulative
