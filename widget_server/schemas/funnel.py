"""Admin API schemas of the loyalty funnel: stages with their entry rules, figure queries."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..vocabulary import ATTRIBUTE_OPS, COMPARISONS
from .common import DIMENSION, SLUG, Integer, RowId
from .public import visitor_id_field

MAX_RULE_DEPTH = 6
MAX_RULE_NODES = 100
GROUPS = ("all", "any", "not")
SUBJECTS = ("score", "orders", "spent", "attribute")


class _RuleErrors(Exception):
    def __init__(self, messages):
        self.messages = messages


class RuleField(fields.Field):
    """A stage entry rule (see services/funnel/rules.py); errors name the path inside the rule,
    e.g. ``stages.3.rule.all.1.gte``."""

    def _deserialize(self, value, attr, data, **kwargs):
        counter = [0]
        try:
            _check_rule(value, 0, counter)
        except _RuleErrors as err:
            raise ValidationError(err.messages) from None
        return value


def _numbers(node: dict, allowed: tuple[str, ...]) -> dict:
    errors = {}
    for key, bound in node.items():
        if key not in allowed:
            errors[key] = [f"Unknown key; use one of {', '.join(allowed)}."]
        elif key in COMPARISONS and (
            isinstance(bound, bool) or not isinstance(bound, int | float) or bound != bound
        ):
            errors[key] = ["Must be a number."]
    return errors


def _check_rule(node, depth: int, counter: list[int]) -> None:
    counter[0] += 1
    if counter[0] > MAX_RULE_NODES:
        raise _RuleErrors([f"A rule may have at most {MAX_RULE_NODES} parts."])
    if depth > MAX_RULE_DEPTH:
        raise _RuleErrors([f"Rules nest at most {MAX_RULE_DEPTH} deep."])
    if not isinstance(node, dict):
        raise _RuleErrors(["Must be an object."])
    if not node:
        return
    kinds = [k for k in (*GROUPS, *SUBJECTS) if k in node]
    if len(kinds) != 1:
        raise _RuleErrors(
            ["Give exactly one of all, any, not, score, orders, spent, attribute (or {} always)."]
        )
    kind = kinds[0]
    if kind in ("all", "any"):
        _check_group(node, kind, depth, counter)
    elif kind == "not":
        if len(node) != 1:
            raise _RuleErrors({k: ["Unknown key beside not."] for k in node if k != "not"})
        try:
            _check_rule(node["not"], depth + 1, counter)
        except _RuleErrors as err:
            raise _RuleErrors({"not": err.messages}) from None
    elif kind in ("orders", "spent"):
        _check_counter(node, kind)
    else:
        _check_named(node, kind)


def _check_group(node: dict, kind: str, depth: int, counter: list[int]) -> None:
    extra = {k: [f"Unknown key beside {kind}."] for k in node if k != kind}
    if extra:
        raise _RuleErrors(extra)
    items = node[kind]
    if not isinstance(items, list) or len(items) > 50:
        raise _RuleErrors({kind: ["Must be a list of at most 50 rules."]})
    errors = {}
    for index, item in enumerate(items):
        try:
            _check_rule(item, depth + 1, counter)
        except _RuleErrors as err:
            errors[index] = err.messages
    if errors:
        raise _RuleErrors({kind: errors})


def _check_counter(node: dict, kind: str) -> None:
    extra = {k: [f"Unknown key beside {kind}."] for k in node if k != kind}
    if extra:
        raise _RuleErrors(extra)
    bounds = node[kind]
    if not isinstance(bounds, dict) or not bounds:
        raise _RuleErrors({kind: ['Must be an object of comparisons such as {"gte": 1}.']})
    errors = _numbers(bounds, COMPARISONS)
    if errors:
        raise _RuleErrors({kind: errors})


def _check_named(node: dict, kind: str) -> None:
    name = node[kind]
    pattern = DIMENSION if kind == "score" else SLUG
    errors = {}
    if not isinstance(name, str) or not pattern.fullmatch(name):
        errors[kind] = [
            "Use a dimension name: lower-case letters, digits and '_'."
            if kind == "score"
            else "Use an attribute name: letters, digits, '_' or '-'."
        ]
    allowed = COMPARISONS if kind == "score" else ATTRIBUTE_OPS
    rest = {k: v for k, v in node.items() if k != kind}
    errors.update(_numbers(rest, allowed))
    if not rest:
        errors.setdefault("_schema", []).append(f"Add a comparison: {', '.join(allowed)}.")
    if kind == "attribute":
        if "in" in rest and (not isinstance(rest["in"], list) or not 1 <= len(rest["in"]) <= 100):
            errors["in"] = ["Must be a list of 1 to 100 values."]
        if "exists" in rest and not isinstance(rest["exists"], bool):
            errors["exists"] = ["Must be true or false."]
        if "equals" in rest and not isinstance(rest["equals"], str | int | float | bool):
            errors["equals"] = ["Must be a string, number or boolean."]
    if errors:
        raise _RuleErrors(errors)


class StageSchema(Schema):
    key = fields.String(
        required=True,
        validate=validate.Regexp(SLUG, error="Use 1-64 letters, digits, '_' or '-'."),
    )
    name = fields.String(required=True, validate=validate.Length(1, 200))
    rule = RuleField(load_default=dict)


class StagesSchema(Schema):
    """The whole ordered funnel, first stage first."""

    stages = fields.List(fields.Nested(StageSchema), required=True, validate=validate.Length(1, 30))

    @validates_schema
    def unique_keys(self, data, **kwargs):
        seen = set()
        errors = {}
        for index, stage in enumerate(data.get("stages") or []):
            if stage["key"] in seen:
                errors[index] = {"key": [f"Duplicate stage key {stage['key']!r}."]}
            seen.add(stage["key"])
        if errors:
            raise ValidationError(errors, "stages")


class FunnelQuerySchema(Schema):
    """Query string of ``GET sites/<id>/funnel``."""

    campaign_id = RowId()
    weeks = Integer(load_default=12, validate=validate.Range(1, 104))


class VisitorPathSchema(Schema):
    """The visitor id in ``GET sites/<id>/visitors/<visitor_id>/funnel`` (the snippet's id)."""

    visitor_id = visitor_id_field
