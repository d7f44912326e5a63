"""Proof by simulation: false positives under continuous looks, power, and SRM detection.

Run ``python -m ab.simulate aa --variants 2 --reps 2000 --seed 1``, ``python -m ab.simulate power
--lift 0.2``, ``python -m ab.simulate aa --weights 1,3 --max-visitors 40000``, ``python -m
ab.simulate srm``; ``--help`` lists the options.

Every repetition simulates a test that is looked at after every ``--look-every`` visitors per
variant; at each look the promotion rule of :mod:`ab.policy` is applied, vectorised over
repetitions, looks and variants with the same functions (:mod:`ab.sequential`). The first look at
which a variant is promotable ends the run. Guardrails other than the minimum of visitors per
variant (time, SRM, minimum lift) are left open, which is the hardest case for the error rate.
Small-count exact tests are not simulated: the policy takes the larger of the exact and the
method's p-value, so it promotes at most as often as simulated here.
"""

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass

import numpy as np
from scipy import special

from . import sequential

__all__ = ["RULES", "SimulationResult", "simulate_promotions", "srm_detection", "main"]

#: Promotion rules simulated: the policy's methods; the naive repeated z-test, promoting a
#: variant ahead of control; and ``naive-any``, counting a significant difference either way.
RULES = ("sequential", "msprt", "naive", "naive-any")


@dataclass(frozen=True)
class SimulationResult:
    """How often a rule promoted, promoted the right variant, and after how many visitors."""

    rule: str
    variants: int
    reps: int
    promoted: float
    promoted_se: float
    correct: float
    median_visitors_per_variant: float | None


def simulate_promotions(
    rates,
    reps: int = 2000,
    look_every: int = 100,
    max_visitors_per_variant: int = 10_000,
    planned_visitors_per_variant: int = 20_000,
    alpha: float = 0.05,
    min_visitors_per_variant: int = 100,
    msprt_tau: float = 0.1,
    rules=RULES,
    rng: np.random.Generator | int | None = None,
    batch: int = 500,
    weights=None,
) -> dict[str, SimulationResult]:
    """Simulate tests of ``rates`` (control first) with a look every ``look_every`` visitors.

    Parameters
    ----------
    rates : sequence of float
        True conversion rate of each variant, the control first.
    look_every : int
        Visitors per variant between looks (on average over the variants, for unequal
        ``weights``: each look adds ``round(look_every * k * weight / sum(weights))`` to a variant).
    max_visitors_per_variant : int
        Visitors per variant (on average) at the last look.
    planned_visitors_per_variant : int
        The sequential design's planned maximum (``Settings.max_visitors_per_variant``).
    rules : sequence of str
        Which of :data:`RULES` to apply.
    weights : sequence of float, optional
        Traffic weights (equal by default). The sequential rule stops looking once any
        comparison reaches the planned information, as :func:`ab.policy.judge` does.

    Returns
    -------
    dict
        ``{rule: SimulationResult}``. ``correct`` counts runs that promoted the variant with the
        highest true rate (when it is not the control).
    """
    rates = np.asarray(rates, float)
    if rates.ndim != 1 or len(rates) < 2 or np.any((rates < 0) | (rates > 1)):
        raise ValueError("rates: need at least 2 rates in [0, 1]")
    shares = np.ones(len(rates)) if weights is None else np.asarray(weights, float)
    if shares.shape != rates.shape or np.any(~np.isfinite(shares) | (shares <= 0)):
        raise ValueError("weights: need one finite weight above 0 per rate")
    per_look = np.rint(look_every * len(rates) * shares / shares.sum()).astype(int)
    if np.any(per_look < 1):
        raise ValueError("weights: every variant needs at least 1 visitor per look")
    generator = np.random.default_rng(rng)
    looks = max_visitors_per_variant // look_every
    visitors = np.arange(1, looks + 1, dtype=float)[:, None] * per_look  # (looks, arms)
    best = int(np.argmax(rates)) if rates.max() > rates[0] else None
    first = {rule: [] for rule in rules}
    winner = {rule: [] for rule in rules}
    for start in range(0, reps, batch):
        size = min(batch, reps - start)
        conversions = generator.binomial(per_look, rates, size=(size, looks, len(rates)))
        conversions = conversions.cumsum(axis=1).astype(float)
        for rule in rules:
            look, arm = _first_promotion(
                rule, conversions, visitors, alpha, planned_visitors_per_variant,
                min_visitors_per_variant, msprt_tau,
            )  # fmt: skip
            first[rule].append(look)
            winner[rule].append(arm)
    visitors_per_variant = visitors.mean(axis=1)
    results = {}
    for rule in rules:
        look = np.concatenate(first[rule])
        arm = np.concatenate(winner[rule])
        promoted = look >= 0
        share = float(promoted.mean())
        median = float(np.median(visitors_per_variant[look[promoted]])) if promoted.any() else None
        results[rule] = SimulationResult(
            rule=rule,
            variants=len(rates),
            reps=reps,
            promoted=share,
            promoted_se=math.sqrt(share * (1 - share) / reps),
            correct=float((promoted & (arm == best)).mean()) if best is not None else 0.0,
            median_visitors_per_variant=median,
        )
    return results


def promotable(rule, conversions, visitors, alpha, planned, min_visitors, msprt_tau):
    """Per look: the arm (1..k-1) the rule would promote, or -1.

    ``conversions`` has shape ``(..., arms)`` with the control at index 0 and ``visitors`` the
    visitors of each arm, broadcastable to it.
    """
    n = np.broadcast_to(np.asarray(visitors, float), conversions.shape)
    control, control_n = conversions[..., :1], n[..., :1]
    treatments, treatment_n = conversions[..., 1:], n[..., 1:]
    pooled = (control + treatments) / (control_n + treatment_n)
    difference = treatments / treatment_n - control / control_n
    variance = pooled * (1 - pooled) * (1 / treatment_n + 1 / control_n)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(variance > 0, difference / np.sqrt(variance), 0.0)
    fixed_p = 2 * special.ndtr(-np.abs(z))
    if rule == "sequential":
        t = sequential.information_fraction(treatment_n, control_n, planned)
        p = np.maximum(sequential.spending_pvalue(z, t), fixed_p)
    elif rule == "msprt":
        p = np.maximum(sequential.msprt_pvalue(difference, variance, msprt_tau * pooled), fixed_p)
    elif rule in ("naive", "naive-any"):
        p = fixed_p
    else:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    ahead = difference != 0 if rule == "naive-any" else difference > 0
    enough = n.min(axis=-1, keepdims=True) >= min_visitors  # the policy's fewest-visitors rule
    significant = (holm_adjusted(p) <= alpha) & ahead & enough
    score = np.where(significant, difference, -np.inf)
    return np.where(significant.any(axis=-1), np.argmax(score, axis=-1) + 1, -1)


def _first_promotion(rule, conversions, visitors, alpha, planned, min_visitors, msprt_tau):
    """(index of the first look that promotes or -1, promoted arm or -1) per repetition.

    ``visitors`` has shape ``(looks, arms)``. The sequential design ends at the first look at
    which a comparison reaches the planned information; later looks are not taken.
    """
    arm_at_look = promotable(
        rule, conversions, visitors[None], alpha, planned, min_visitors, msprt_tau
    )
    if rule == "sequential":
        t = sequential.information_fraction(visitors[:, 1:], visitors[:, :1], planned)
        spent = np.flatnonzero((t >= 1.0).any(axis=1))
        if len(spent):
            arm_at_look[:, spent[0] + 1 :] = -1
    hit = arm_at_look >= 0
    look = np.where(hit.any(axis=1), np.argmax(hit, axis=1), -1)
    arm = np.where(look >= 0, arm_at_look[np.arange(len(look)), np.maximum(look, 0)], -1)
    return look, arm


def holm_adjusted(p):
    """Holm-adjusted p-values along the last axis (vectorised :func:`ab.stats.holm`)."""
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1)
    adjusted = np.maximum.accumulate(np.minimum((m - np.arange(m)) * ranked, 1.0), axis=-1)
    result = np.empty_like(adjusted)
    np.put_along_axis(result, order, adjusted, axis=-1)
    return result


def srm_detection(
    served_share: float = 0.45,
    totals=(500, 1_000, 2_000, 5_000, 10_000, 20_000),
    reps: int = 2000,
    threshold: float = 0.001,
    rng: np.random.Generator | int | None = None,
) -> dict[int, float]:
    """Share of runs in which the SRM check flags a 50/50 test served ``served_share`` / rest,
    after each total number of visitors (the chi-square of :func:`ab.stats.srm_test`)."""
    generator = np.random.default_rng(rng)
    detected = {}
    for total in totals:
        first = generator.binomial(total, served_share, size=reps)
        expected = total / 2
        chi2 = 2 * (first - expected) ** 2 / expected
        detected[int(total)] = float((special.chdtrc(1, chi2) < threshold).mean())
    return detected


def _print_results(results: dict[str, SimulationResult], as_json: bool) -> None:
    if as_json:
        print(json.dumps({k: asdict(v) for k, v in results.items()}, indent=2))
        return
    print(f"{'rule':<11} {'promoted':>9} {'(se)':>8} {'correct':>8} {'median n/variant':>17}")
    for r in results.values():
        median = (
            "-"
            if r.median_visitors_per_variant is None
            else f"{r.median_visitors_per_variant:,.0f}"
        )
        print(
            f"{r.rule:<11} {r.promoted:>9.2%} {r.promoted_se:>8.2%} {r.correct:>8.2%} {median:>17}"
        )  # fmt: skip


def _weights(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from None


def main(argv=None) -> int:
    """The command line: subcommands ``aa``, ``power`` and ``srm``."""
    parser = argparse.ArgumentParser(
        prog="python -m ab.simulate", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("aa", "A/A tests: the false-positive rate"),
        ("power", "power and visitors needed"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("--variants", type=int, default=2, help="arms, control included")
        command.add_argument("--reps", type=int, default=2000)
        command.add_argument("--seed", type=int, default=1)
        command.add_argument("--rate", type=float, default=0.10, help="control rate")
        command.add_argument("--look-every", type=int, default=100, help="visitors per variant")
        command.add_argument("--max-visitors", type=int, default=None,
                             help="visitors per variant at the last look")  # fmt: skip
        command.add_argument("--planned", type=int, default=20_000,
                             help="the sequential design's planned maximum")  # fmt: skip
        command.add_argument("--alpha", type=float, default=0.05)
        command.add_argument("--min-visitors", type=int, default=100)
        command.add_argument("--msprt-tau", type=float, default=0.1)
        command.add_argument("--weights", type=_weights, default=None,
                             help="traffic weights, control first, e.g. 1,3")  # fmt: skip
        command.add_argument("--json", action="store_true")
        if name == "power":
            command.add_argument("--lift", type=float, default=0.2,
                                 help="relative lift of the last variant")  # fmt: skip
    srm = sub.add_parser("srm", help="detection of a 50/50 test served 45/55")
    srm.add_argument("--share", type=float, default=0.45)
    srm.add_argument("--reps", type=int, default=2000)
    srm.add_argument("--seed", type=int, default=1)
    srm.add_argument("--threshold", type=float, default=0.001)
    args = parser.parse_args(argv)

    if args.command == "srm":
        detected = srm_detection(
            args.share, reps=args.reps, threshold=args.threshold, rng=args.seed
        )
        healthy = srm_detection(0.5, reps=args.reps, threshold=args.threshold, rng=args.seed + 1)
        print(f"{'total visitors':>14} {'detected':>9} {'false alarm (50/50)':>20}")
        for total, share in detected.items():
            print(f"{total:>14,} {share:>9.2%} {healthy[total]:>20.2%}")
        return 0
    if args.weights is not None and len(args.weights) != args.variants:
        parser.error(f"--weights needs {args.variants} values (one per variant)")
    rates = [args.rate] * args.variants
    if args.command == "power":
        rates[-1] = args.rate * (1 + args.lift)
    default_max = 10_000 if args.command == "aa" else args.planned
    results = simulate_promotions(
        rates,
        reps=args.reps,
        look_every=args.look_every,
        max_visitors_per_variant=args.max_visitors or default_max,
        planned_visitors_per_variant=args.planned,
        alpha=args.alpha,
        min_visitors_per_variant=args.min_visitors,
        msprt_tau=args.msprt_tau,
        rng=args.seed,
        weights=args.weights,
    )
    _print_results(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
