"""Proof by simulation: false positives under continuous looks, power, SRM detection, guardrail
metrics and post-stratification.

Run ``python -m ab.simulate aa --variants 2 --reps 2000 --seed 1``, ``python -m ab.simulate power
--lift 0.2``, ``python -m ab.simulate aa --weights 1,3 --max-visitors 40000``, ``python -m
ab.simulate srm``, ``python -m ab.simulate guardrail``, ``python -m ab.simulate strata``;
``--help`` lists the options.

:func:`simulate_designs` draws whole visitors of a :class:`Population`: their stratum (what was
known before the popup), their conversion on the primary metric and a guardrail value (an order
total, a close), jointly, so that the designs it compares (raw or post-stratified, with or
without the guardrail) judge the very same visitors.

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

from . import guardrails, sequential, stratification

__all__ = [
    "RULES",
    "SimulationResult",
    "simulate_promotions",
    "srm_detection",
    "Population",
    "Design",
    "simulate_designs",
    "design_looks",
    "cart_survey",
    "stratified_survey",
    "explained_share",
    "main",
]

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


@dataclass(frozen=True)
class Population:
    """The visitors of a simulated two-arm test (control first), drawn whole.

    Attributes
    ----------
    shares : array, shape (S,)
        Each stratum's share of the visitors (the same in both arms: randomisation).
    joint : array, shape (2, S, 2, V)
        Per arm and stratum, the joint distribution of (primary conversion 0/1, guardrail
        value index); sums to 1 over its last two axes.
    values : array, shape (V,)
        The guardrail's per-visitor values (an order total, 0 for no order; 0/1 for a rate).
    keys : tuple of tuples
        Each stratum's key, coarsest component first (:func:`ab.stratification.hierarchy`).
    guardrail_binary : bool
        Whether the guardrail is a 0/1 rate.
    lower_is_better : bool
        Whether a rise of the guardrail is the harm (close rate).
    max_drop : float
        The guardrail's tolerated relative worsening.
    """

    shares: np.ndarray
    joint: np.ndarray
    values: np.ndarray
    keys: tuple
    guardrail_binary: bool = False
    lower_is_better: bool = False
    max_drop: float = 0.0

    @classmethod
    def independent(cls, shares, rates, values=(0.0,), value_probabilities=None, keys=None,
                    **guardrail):  # fmt: skip
        """Primary conversions and guardrail values drawn independently of each other.

        ``rates`` has shape (2, S) and ``value_probabilities`` (2, S, V) (default: every
        visitor has the first value).
        """
        shares = np.asarray(shares, float)
        rates = np.asarray(rates, float)
        values = np.asarray(values, float)
        if value_probabilities is None:
            value_probabilities = np.zeros((2, len(shares), len(values)))
            value_probabilities[..., 0] = 1.0
        value_probabilities = np.asarray(value_probabilities, float)
        converted = np.stack([1.0 - rates, rates], axis=-1)  # (2, S, 2)
        joint = converted[..., :, None] * value_probabilities[..., None, :]
        keys = tuple((f"s{i}",) for i in range(len(shares))) if keys is None else tuple(keys)
        return cls(shares, joint, values, keys, **guardrail)

    def __post_init__(self):
        shares, joint = np.asarray(self.shares, float), np.asarray(self.joint, float)
        if shares.ndim != 1 or np.any(shares < 0) or not math.isclose(shares.sum(), 1.0):
            raise ValueError("shares: need stratum shares >= 0 that sum to 1")
        if joint.shape != (2, len(shares), 2, len(self.values)):
            raise ValueError("joint: need shape (2 arms, strata, 2, values)")
        if np.any(joint < 0) or not np.allclose(joint.sum(axis=(-1, -2)), 1.0):
            raise ValueError("joint: each arm and stratum needs probabilities summing to 1")
        if len(self.keys) != len(shares):
            raise ValueError("keys: need one key per stratum")

    def means(self) -> tuple[np.ndarray, np.ndarray]:
        """True (primary rate, guardrail mean) of each arm."""
        weighted = self.shares[None, :, None, None] * self.joint
        primary = weighted[:, :, 1, :].sum(axis=(1, 2))
        return primary, (weighted.sum(axis=2) * self.values).sum(axis=(1, 2))


@dataclass(frozen=True)
class Design:
    """A promotion rule to simulate: raw or post-stratified figures, with or without the
    population's guardrail."""

    adjusted: bool = False
    guarded: bool = False

    @property
    def name(self) -> str:
        return ("adjusted" if self.adjusted else "raw") + ("+guardrail" if self.guarded else "")


def simulate_designs(
    population: Population,
    designs=(Design(),),
    reps: int = 1000,
    look_every: int = 100,
    max_visitors_per_variant: int = 20_000,
    planned_visitors_per_variant: int = 20_000,
    alpha: float = 0.05,
    min_visitors_per_variant: int = 100,
    min_stratum_visitors: int = stratification.MIN_STRATUM_VISITORS,
    rng: np.random.Generator | int | None = None,
    batch: int = 250,
) -> dict[str, SimulationResult]:
    """Simulate ``sequential`` tests of ``population`` judged by each of ``designs`` on the same
    visitors, looked at every ``look_every`` visitors per variant.

    Each look applies the policy's arithmetic, vectorised: the post-stratified or raw
    comparison (:func:`ab.stratification.contrast`, small strata merged by
    :func:`~ab.stratification.collapse`), the alpha-spending p-value at the information
    fraction (grown by the variance saved, when adjusted), and for guarded designs the
    always-valid harm test of the guardrail (:func:`ab.guardrails.harm_pvalue`). A run promotes
    at the first look where the variant is significant, ahead, has ``min_visitors_per_variant``
    and no harmed guardrail; looks after the design's planned information are not taken.

    Returns
    -------
    dict
        ``{design name: SimulationResult}``; ``correct`` counts promotions of a variant whose
        true primary rate is above the control's.
    """
    generator = np.random.default_rng(rng)
    looks = max_visitors_per_variant // look_every
    visitors = np.arange(1, looks + 1, dtype=float) * look_every
    cells = population.shares[None, :, None, None] * population.joint  # (2, S, 2, V)
    probabilities = cells.reshape(2, -1)
    shape = (2, len(population.shares), 2, len(population.values))
    primary_rates, _ = population.means()
    better = primary_rates[1] > primary_rates[0]
    first = {design.name: [] for design in designs}
    t = sequential.information_fraction(visitors, visitors, planned_visitors_per_variant)
    for start in range(0, reps, batch):
        size = min(batch, reps - start)
        counts = generator.multinomial(look_every, probabilities, size=(size, looks, 2))
        counts = counts.cumsum(axis=1).reshape(size, looks, *shape)
        for design in designs:
            promotable, harmed, spent = design_looks(
                population, design, counts, t, alpha, min_stratum_visitors
            )
            ok = promotable & ~harmed & (visitors >= min_visitors_per_variant)
            # The design ends at the first look reaching its planned information.
            ok &= np.cumsum(spent, axis=1) - spent == 0
            first[design.name].append(np.where(ok.any(axis=1), np.argmax(ok, axis=1), -1))
    results = {}
    for design in designs:
        look = np.concatenate(first[design.name])
        promoted = look >= 0
        share = float(promoted.mean())
        median = float(np.median(visitors[look[promoted]])) if promoted.any() else None
        results[design.name] = SimulationResult(
            rule=design.name,
            variants=2,
            reps=reps,
            promoted=share,
            promoted_se=math.sqrt(share * (1 - share) / reps),
            correct=share if better else 0.0,
            median_visitors_per_variant=median,
        )
    return results


def design_looks(
    population: Population,
    design: Design,
    counts,
    t,
    alpha: float = 0.05,
    min_stratum_visitors: int = stratification.MIN_STRATUM_VISITORS,
):
    """What ``design`` sees at each look: ``(promotable, harmed, spent)`` boolean arrays.

    Parameters
    ----------
    counts : int array, shape (..., 2, S, 2, V)
        Cumulative visitors per arm, stratum, primary conversion (0/1) and guardrail value.
    t : array broadcastable to ``counts.shape[:-4]``
        The sequential design's information fraction by visitors.

    Returns
    -------
    promotable : the variant is significant and ahead on the primary metric
    harmed : the guardrail's harm test flags it (all False for an unguarded design)
    spent : the information fraction (grown by post-stratification) has reached 1
    """
    counts = np.asarray(counts, float)
    parents = stratification.hierarchy(population.keys)
    n = counts.sum(axis=(-1, -2))  # (..., 2, S)
    converted = counts[..., 1, :].sum(axis=-1)
    promotable, spent = _promotable_look(
        n, converted, t, design.adjusted, alpha, parents, min_stratum_visitors
    )
    harmed = np.zeros_like(promotable)
    if design.guarded:
        values = counts.sum(axis=-2)  # (..., 2, S, V)
        harmed = _harmed(population, n, values @ population.values,
                         values @ population.values**2, t, design.adjusted, alpha, parents,
                         min_stratum_visitors)  # fmt: skip
    return promotable, harmed, spent


def _comparison(n, sums, squares, adjusted, parents, min_stratum_visitors, binary, factor=1.0,
                pooled=False):  # fmt: skip
    """(estimate, variance, raw variance) of arm 1 against arm 0, per repetition and look."""
    totals = tuple(a.sum(axis=-1, keepdims=True) for a in (n, sums, squares))
    raw_estimate, raw_variance = stratification.contrast(*totals, 1, 0, binary, factor, pooled)
    if not adjusted:
        return raw_estimate, raw_variance, raw_variance
    cells = stratification.collapse(n, sums, squares, parents, min_stratum_visitors)
    estimate, variance = stratification.contrast(*cells, 1, 0, binary, factor, pooled)
    return estimate, variance, raw_variance


def _information(t, variance, raw_variance, adjusted):
    if not adjusted:
        return t
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((variance > 0) & (raw_variance > 0), t * raw_variance / variance, t)


def _promotable_look(n, converted, t, adjusted, alpha, parents, min_stratum_visitors):
    """(significant and ahead, design spent) per repetition and look: the sequential rule."""
    estimate, variance, raw_variance = _comparison(
        n, converted, converted, adjusted, parents, min_stratum_visitors, True, pooled=True
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(variance > 0, estimate / np.sqrt(variance), 0.0)
    information = _information(t, variance, raw_variance, adjusted)
    p = np.maximum(sequential.spending_pvalue(z, information), 2 * special.ndtr(-np.abs(z)))
    significant = (p <= alpha) & (estimate > 0)
    return significant, np.broadcast_to(information >= 1.0, significant.shape)


def _harmed(population, n, sums, squares, t, adjusted, alpha, parents, min_stratum_visitors):
    """Whether the guardrail's always-valid harm test flags the variant, per look."""
    sign = -1.0 if population.lower_is_better else 1.0
    factor = 1.0 - sign * population.max_drop
    estimate, variance, raw_variance = _comparison(
        n, sums, squares, adjusted, parents, min_stratum_visitors, population.guardrail_binary,
        factor,
    )  # fmt: skip
    information = _information(t, variance, raw_variance, adjusted)
    return guardrails.harm_pvalue(sign * estimate, variance, information) <= alpha


#: A cart-page survey's order totals (a discrete spread around 60 with a CV near 0.45).
CART_ORDER_TOTALS = (30.0, 45.0, 60.0, 80.0, 120.0)
CART_ORDER_SHARES = (0.20, 0.25, 0.25, 0.20, 0.10)


def cart_survey(completion=0.02, lift=0.10, order_rate=0.5, revenue_change=-0.05) -> Population:
    """A "why didn't you buy?" survey on the cart page: completion ``completion`` in the control
    and ``completion * (1 + lift)`` in the variant; half the visitors order (``order_rate``)
    with totals :data:`CART_ORDER_TOTALS`, the variant's order rate moved so that revenue per
    visitor changes by ``revenue_change``; the two drawn independently. One stratum.
    """
    totals = np.array(CART_ORDER_TOTALS)
    shares = np.array(CART_ORDER_SHARES)
    values = np.concatenate([[0.0], totals])
    probabilities = []
    for rate in (order_rate, order_rate * (1 + revenue_change)):
        probabilities.append([np.concatenate([[1 - rate], rate * shares])])
    rates = [[completion], [completion * (1 + lift)]]
    return Population.independent([1.0], rates, values, probabilities)


#: Strata of :func:`stratified_survey`: (key component, share, relative completion rate) per
#: covariate, the most telling first (visitor, then device, then traffic source).
SURVEY_STRATA = (
    (("new", 0.55, 0.3), ("returning", 0.25, 1.0), ("customer", 0.13, 3.0),
     ("repeat", 0.07, 5.0)),
    (("mobile", 0.6, 0.7), ("desktop", 0.4, 1.45)),
    (("direct", 0.35, 1.15), ("search", 0.40, 1.0), ("other", 0.25, 0.8)),
)  # fmt: skip


def stratified_survey(rate=0.10, lift=0.10, signal=True, strata=SURVEY_STRATA) -> Population:
    """A survey whose completion depends on who the visitor is: ``strata`` (a product of
    covariates, each with its shares and relative rates) scaled so that the mean rate is
    ``rate``; the variant multiplies every stratum's rate by ``1 + lift``. With ``signal``
    False every stratum converts at ``rate`` (covariates that carry nothing).
    """
    keys, shares, factors = [()], np.ones(1), np.ones(1)
    for levels in strata:
        keys = [(*key, name) for key in keys for name, _, _ in levels]
        shares = np.outer(shares, [share for _, share, _ in levels]).ravel()
        factors = np.outer(factors, [factor for _, _, factor in levels]).ravel()
    base = rate * factors / (shares * factors).sum() if signal else np.full(len(shares), rate)
    if np.any(base * (1 + lift) > 1):
        raise ValueError("strata: a stratum's rate would exceed 1")
    return Population.independent(shares / shares.sum(), [base, base * (1 + lift)], keys=keys)


def explained_share(population: Population) -> float:
    """Share of the control's per-visitor variance on the primary metric that its strata
    explain (``R**2``): what post-stratification can remove."""
    rates = population.joint[0, :, 1, :].sum(axis=-1)
    mean = float((population.shares * rates).sum())
    between = float((population.shares * (rates - mean) ** 2).sum())
    return between / (mean * (1 - mean))


def _print_results(results: dict[str, SimulationResult], as_json: bool) -> None:
    if as_json:
        print(json.dumps({k: asdict(v) for k, v in results.items()}, indent=2))
        return
    print(f"{'rule':<14} {'promoted':>9} {'(se)':>8} {'correct':>8} {'median n/variant':>17}")
    for r in results.values():
        median = (
            "-"
            if r.median_visitors_per_variant is None
            else f"{r.median_visitors_per_variant:,.0f}"
        )
        print(
            f"{r.rule:<14} {r.promoted:>9.2%} {r.promoted_se:>8.2%} {r.correct:>8.2%} {median:>17}"
        )  # fmt: skip


def _weights(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from None


def main(argv=None) -> int:
    """The command line: subcommands ``aa``, ``power``, ``srm``, ``guardrail`` and ``strata``."""
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
    guard = sub.add_parser("guardrail", help="a cart survey's winner that loses revenue")
    guard.add_argument("--revenue-change", type=float, default=-0.05,
                       help="relative change of revenue per visitor in the variant")  # fmt: skip
    guard.add_argument("--lift", type=float, default=0.10, help="completion lift")
    guard.add_argument("--completion", type=float, default=0.02, help="control completion rate")
    guard.add_argument("--order-rate", type=float, default=0.5)
    guard.add_argument("--max-visitors", type=int, default=100_000,
                       help="planned and simulated visitors per variant")  # fmt: skip
    guard.add_argument("--look-every", type=int, default=1000)
    strata = sub.add_parser("strata", help="post-stratification against raw figures")
    strata.add_argument("--lift", type=float, default=0.10)
    strata.add_argument("--rate", type=float, default=0.10)
    strata.add_argument("--no-signal", action="store_true",
                        help="every stratum converts alike")  # fmt: skip
    for command in (guard, strata):
        command.add_argument("--reps", type=int, default=1000)
        command.add_argument("--seed", type=int, default=1)
        command.add_argument("--json", action="store_true")
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
    if args.command == "guardrail":
        population = cart_survey(args.completion, args.lift, args.order_rate, args.revenue_change)
        results = simulate_designs(
            population, (Design(), Design(guarded=True)), reps=args.reps,
            look_every=args.look_every, max_visitors_per_variant=args.max_visitors,
            planned_visitors_per_variant=args.max_visitors, rng=args.seed,
        )  # fmt: skip
        _print_results(results, args.json)
        return 0
    if args.command == "strata":
        population = stratified_survey(args.rate, args.lift, signal=not args.no_signal)
        results = simulate_designs(
            population, (Design(), Design(adjusted=True)), reps=args.reps, rng=args.seed
        )
        if not args.json:
            print(f"strata explain {explained_share(population):.1%} of the variance")
        _print_results(results, args.json)
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
