"""Dimension scores from survey answers; pure, no database.

Where a score comes from:

* a ``single_choice`` or ``multi_choice`` answer scores the chosen options' ``score`` on their
  ``dimension`` (several chosen options on one dimension count as their mean);
* a numeric answer (``scale``, ``nps``, ``rating``) on a step with a ``dimension`` scores the
  answer value itself on that dimension; an ``nps`` step without one scores on ``nps``.

A visitor's score on a dimension is the mean of the latest answer to each question that scores
on it, across all of the visitor's survey responses (one response per campaign; a re-answered
step keeps only its latest value, and a recurring survey's later round overrides the earlier
rounds' answers step by step). Text answers and unknown option ids score nothing.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from ...vocabulary import NUMERIC_TYPES


@dataclass(frozen=True)
class StepScoring:
    """How one step's answer turns into dimension scores."""

    #: Dimension the numeric answer value scores on (numeric steps only).
    value_dimension: str | None = None
    #: ``{option_id: (dimension, score)}`` for options that carry both.
    options: dict = field(default_factory=dict)


def scoring_of(content: dict) -> dict[str, StepScoring]:
    """``{step_id: StepScoring}`` for the steps of a survey variant that score anything."""
    scoring = {}
    for step in (content or {}).get("steps", ()):
        value_dimension = None
        if step.get("type") in NUMERIC_TYPES:
            value_dimension = step.get("dimension") or ("nps" if step["type"] == "nps" else None)
        options = {
            o["id"]: (o["dimension"], float(o["score"]))
            for o in step.get("options") or ()
            if o.get("dimension") and o.get("score") is not None
        }
        if value_dimension or options:
            scoring[step["id"]] = StepScoring(value_dimension, options)
    return scoring


def answer_scores(step: StepScoring, value) -> dict[str, float]:
    """The dimension scores one answer value gives (empty when it scores nothing)."""
    if isinstance(value, bool):
        return {}
    if isinstance(value, int | float):
        return {step.value_dimension: float(value)} if step.value_dimension else {}
    chosen = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    per_dimension = defaultdict(list)
    for option_id in chosen:
        if option_id in step.options:
            dimension, score = step.options[option_id]
            per_dimension[dimension].append(score)
    return {d: sum(scores) / len(scores) for d, scores in per_dimension.items()}


def visitor_scores(responses, scoring_by_variant: dict[int, dict[str, StepScoring]]) -> dict:
    """Mean per dimension over the latest answers of ``responses`` (``(variant_id, answers)``)."""
    collected = defaultdict(list)
    for variant_id, answers in responses:
        steps = scoring_by_variant.get(variant_id) or {}
        for step_id, answer in (answers or {}).items():
            if step_id in steps:
                for dimension, score in answer_scores(steps[step_id], answer.get("value")).items():
                    collected[dimension].append(score)
    return {d: round(sum(s) / len(s), 4) for d, s in sorted(collected.items())}
