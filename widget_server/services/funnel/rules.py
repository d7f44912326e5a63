"""The rule language of stages and targeting, and the default loyalty funnel; pure, no database.

A rule is a JSON object, one of::

    {}                                         always holds
    {"all": [rule, ...]}                       every sub-rule holds (an empty list holds)
    {"any": [rule, ...]}                       at least one sub-rule holds
    {"not": rule}                              the sub-rule does not hold
    {"score": "emotional", "gte": 4}           the visitor's score on a dimension compares so
    {"orders": {"gte": 2}}                     the visitor's number of orders
    {"spent": {"gte": 100}}                    the visitor's total spent (sum of order totals)
    {"attribute": "plan", "equals": "gold"}    a custom attribute: equals / in / exists / gte ...

Comparisons are ``gte``, ``gt``, ``lte``, ``lt``, ``eq`` on numbers; several in one object must
all hold (``{"orders": {"gte": 2, "lt": 5}}``). A score or attribute the visitor does not have
makes its comparison false (``{"not": {"score": "nps", "gte": 9}}`` holds for a visitor with no
NPS answer). A visitor's stage is the LAST stage, in funnel order, whose rule holds.
"""

import operator
from dataclasses import dataclass, field
from decimal import Decimal

from ...vocabulary import COMPARISONS

#: Each comparison of :data:`~widget_server.vocabulary.COMPARISONS` as a function.
NUMERIC_OPS = dict(
    zip(COMPARISONS, (operator.ge, operator.gt, operator.le, operator.lt, operator.eq), strict=True)
)


@dataclass(frozen=True)
class Facts:
    """What a stage rule may look at for one visitor."""

    scores: dict = field(default_factory=dict)
    order_count: int = 0
    total_spent: float = 0.0
    attributes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StageDefinition:
    key: str
    name: str
    rule: dict


def _emotional(minimum: float = 4) -> dict:
    return {"score": "emotional", "gte": minimum}


#: The default funnel of a site with none of its own: purchase behaviour first, then the loyalty
#: ladder measured by the demo's questionnaire (Likert 1-5 emotional and intentional statements,
#: and the "have you recommended us" choice scoring 5 / 3 / 1 on the action dimension).
DEFAULT_STAGES: tuple[StageDefinition, ...] = (
    StageDefinition("new_visitor", "New visitor", {}),
    StageDefinition("customer", "Customer", {"orders": {"gte": 1}}),
    StageDefinition("repeat_customer", "Repeat customer", {"orders": {"gte": 2}}),
    StageDefinition("emotional", "Emotionally loyal", _emotional()),
    StageDefinition(
        "intentional",
        "Intends to buy again",
        {"all": [_emotional(), {"score": "intentional", "gte": 4}]},
    ),
    StageDefinition(
        "advocate",
        "Advocate",
        {
            "all": [
                _emotional(),
                {"score": "intentional", "gte": 4},
                {"score": "action", "gte": 4},
            ]
        },
    ),
)


def holds(rule: dict, facts: Facts) -> bool:
    """Whether ``rule`` (already validated by the funnel schema) holds for ``facts``."""
    if not rule:
        return True
    if "all" in rule:
        return all(holds(sub, facts) for sub in rule["all"])
    if "any" in rule:
        return any(holds(sub, facts) for sub in rule["any"])
    if "not" in rule:
        return not holds(rule["not"], facts)
    if "score" in rule:
        return _compare(facts.scores.get(rule["score"]), rule)
    if "orders" in rule:
        return _compare(facts.order_count, rule["orders"])
    if "spent" in rule:
        return _compare(facts.total_spent, rule["spent"])
    if "attribute" in rule:
        return attribute_holds(rule, facts.attributes)
    raise ValueError(f"Unknown rule {sorted(rule)!r}.")


def stage_for(stages, facts: Facts) -> str | None:
    """The key of the last stage whose rule holds, or None when no rule holds."""
    found = None
    for stage in stages:
        if holds(stage.rule, facts):
            found = stage.key
    return found


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    return float(value)


def _compare(value, comparisons: dict) -> bool:
    have = _number(value)
    if have is None:
        return False
    checks = [(op, bound) for op, bound in comparisons.items() if op in NUMERIC_OPS]
    return all(NUMERIC_OPS[op](have, float(bound)) for op, bound in checks)


def attribute_holds(rule: dict, attributes: dict) -> bool:
    """Whether a rule on one custom attribute (``{"attribute": "plan", "in": [...]}``) holds."""
    present = rule["attribute"] in attributes and attributes[rule["attribute"]] is not None
    value = attributes.get(rule["attribute"])
    if "exists" in rule:
        return present == bool(rule["exists"])
    if "equals" in rule:
        return present and value == rule["equals"]
    if "in" in rule:
        return present and value in rule["in"]
    return present and _compare(value, rule)


def from_targeting(rule: dict) -> dict:
    """A targeting attribute rule (``{"key", "op", ...}``, the campaign API's form) in this
    language, so that targeting and stages are judged by one evaluator.

    Targeting compares the attribute as sent, absent ones as ``None``: ``equals`` null and ``in``
    a list with null also admit a visitor without the attribute; ``range`` admits numbers only.
    """
    key, op = rule["key"], rule["op"]
    absent = {"attribute": key, "exists": False}
    if op == "equals":
        return absent if rule["value"] is None else {"attribute": key, "equals": rule["value"]}
    if op == "in":
        listed = {"attribute": key, "in": rule["values"]}
        return {"any": [listed, absent]} if None in rule["values"] else listed
    bounds = {"gte": rule["min"]} if "min" in rule else {}
    if "max" in rule:
        bounds["lte"] = rule["max"]
    return {"attribute": key, **bounds}
