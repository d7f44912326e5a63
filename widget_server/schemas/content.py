"""Variant content: survey steps with branching, and wheel slices."""

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from ..errors import validation_failed
from ..vocabulary import CHOICE_TYPES, CODE_PATTERN, MAX_CODE_VALID_MINUTES, QUESTION_TYPES
from .common import DIMENSION, LocalText, RowId, slug

END = "end"

dimension_field = fields.String(
    validate=validate.Regexp(DIMENSION, error="Use lower-case letters, digits and '_'.")
)


class OptionSchema(Schema):
    id = slug(required=True)
    label = LocalText(required=True, max_length=300)
    dimension = fields.String(
        validate=validate.Regexp(DIMENSION, error="Use lower-case letters, digits and '_'.")
    )
    score = fields.Float(allow_nan=False, validate=validate.Range(-1000, 1000))


class ConditionSchema(Schema):
    """Exactly one comparison of the step's answer value."""

    equals = fields.Raw()
    in_ = fields.List(fields.Raw(), data_key="in", attribute="in", validate=validate.Length(1, 50))
    gte = fields.Float(allow_nan=False)
    lte = fields.Float(allow_nan=False)

    @validates_schema
    def exactly_one(self, data, **kwargs):
        if len(data) != 1:
            raise ValidationError("Give exactly one of equals, in, gte, lte.")
        for value in data.get("in", [data.get("equals")]):
            if value is not None and not isinstance(value, str | int | float):
                raise ValidationError("Compare with option ids or numbers.")


class NextRuleSchema(Schema):
    when = fields.Nested(ConditionSchema)
    goto = fields.String(required=True, validate=validate.Length(1, 64))


class ScaleSchema(Schema):
    min = fields.Integer(load_default=1, validate=validate.Range(0, 10))
    max = fields.Integer(load_default=5, validate=validate.Range(1, 10))
    min_label = LocalText(max_length=100)
    max_label = LocalText(max_length=100)

    @validates_schema
    def ordered(self, data, **kwargs):
        if data["max"] <= data["min"]:
            raise ValidationError("Must be greater than min.", "max")


class StepSchema(Schema):
    id = slug(required=True)
    type = fields.String(required=True, validate=validate.OneOf(QUESTION_TYPES))
    question = LocalText(required=True, max_length=500)
    description = LocalText(max_length=1000)
    required = fields.Boolean(load_default=True)
    options = fields.List(fields.Nested(OptionSchema), validate=validate.Length(max=20))
    scale = fields.Nested(ScaleSchema)
    #: For numeric questions, the answer value is the score on this dimension.
    dimension = fields.String(
        validate=validate.Regexp(DIMENSION, error="Use lower-case letters, digits and '_'.")
    )
    placeholder = LocalText(max_length=200)
    next = fields.List(fields.Nested(NextRuleSchema), validate=validate.Length(max=30))

    @validates_schema
    def options_fit_type(self, data, **kwargs):
        kind = data.get("type")
        options = data.get("options") or []
        if kind in CHOICE_TYPES and len(options) < (2 if kind == "single_choice" else 1):
            raise ValidationError("A choice question needs options to choose from.", "options")
        seen = {}
        errors = {}
        for index, option in enumerate(options):
            if option["id"] in seen:
                errors[index] = {"id": [f"Duplicate option id {option['id']!r}."]}
            seen[option["id"]] = index
        if errors:
            raise ValidationError(errors, "options")
        if kind in CHOICE_TYPES:
            for index, rule in enumerate(data.get("next") or []):
                for value in _rule_values(rule):
                    if str(value) not in seen:
                        raise ValidationError(
                            {index: {"when": [f"No option with id {value!r}."]}}, "next"
                        )


def _rule_values(rule) -> list:
    when = rule.get("when") or {}
    if "equals" in when:
        return [when["equals"]]
    return list(when.get("in", []))


class RewardOfferSchema(Schema):
    """A survey's thank-you step may offer a spin of a wheel campaign."""

    campaign_id = RowId(required=True, strict=True)
    label = LocalText(max_length=200)


class ThankYouSchema(Schema):
    title = LocalText(max_length=200)
    message = LocalText(max_length=1000)
    reward = fields.Nested(RewardOfferSchema)


HIDDEN_SOURCES = ("query", "data", "identify")


class HiddenFieldSchema(Schema):
    """A value stored with the response that the visitor does not type: the page URL's query
    parameter ``key`` (``query``), the snippet tag's ``data-<key>`` attribute (``data``), or the
    visitor's ``identify`` attribute ``key`` (``identify``)."""

    name = slug(required=True)
    source = fields.String(required=True, validate=validate.OneOf(HIDDEN_SOURCES))
    key = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[A-Za-z0-9_.\-]{1,64}\Z", error="Use 1-64 letters, digits, '_', '.', '-'."
        ),
    )


class SurveyContentSchema(Schema):
    title = LocalText(max_length=200)
    steps = fields.List(fields.Nested(StepSchema), required=True, validate=validate.Length(1, 30))
    thank_you = fields.Nested(ThankYouSchema)
    hidden_fields = fields.List(fields.Nested(HiddenFieldSchema), validate=validate.Length(max=10))

    @validates_schema
    def hidden_names(self, data, **kwargs):
        names = [field["name"] for field in data.get("hidden_fields") or []]
        if len(names) != len(set(names)):
            raise ValidationError("Each hidden field needs a name of its own.", "hidden_fields")

    @validates_schema
    def step_graph(self, data, **kwargs):
        """Step ids are unique and every ``goto`` names a step or ``end``."""
        steps = data.get("steps") or []
        ids = {}
        errors: dict = {}
        for index, step in enumerate(steps):
            if step["id"] in ids:
                errors.setdefault(index, {})["id"] = [f"Duplicate step id {step['id']!r}."]
            ids[step["id"]] = index
        for index, step in enumerate(steps):
            for rule_index, rule in enumerate(step.get("next") or []):
                target = rule["goto"]
                if target != END and target not in ids:
                    errors.setdefault(index, {}).setdefault("next", {})[rule_index] = {
                        "goto": [f"No step with id {target!r} (use a step id or 'end')."]
                    }
                elif target == step["id"]:
                    errors.setdefault(index, {}).setdefault("next", {})[rule_index] = {
                        "goto": ["A step cannot lead to itself."]
                    }
        if errors:
            raise ValidationError(errors, "steps")


REWARD_TYPES = ("none", "pool", "code")


class SliceRewardSchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf(REWARD_TYPES))
    #: A coupon pool of the same site (checked by the catalog service, which knows the site).
    pool_id = RowId(strict=True)
    code = fields.String(
        validate=validate.Regexp(CODE_PATTERN, error="1-100 printable characters, no spaces.")
    )

    @validates_schema
    def reward_target(self, data, **kwargs):
        """A pool reward names its pool, a fixed-code reward its code, and nothing else."""
        needs = {"none": set(), "pool": {"pool_id"}, "code": {"code"}}[data["type"]]
        for name in needs - data.keys():
            raise ValidationError(f"A {data['type']} reward needs {name}.", name)
        for name in ({"pool_id", "code"} - needs) & data.keys():
            raise ValidationError(f"A {data['type']} reward takes no {name}.", name)


class SliceSchema(Schema):
    label = LocalText(required=True, max_length=60)
    color = fields.String(
        load_default="#f4a261",
        validate=validate.Regexp(r"^#[0-9a-fA-F]{6}\Z", error="Use a colour like #ff8800."),
    )
    #: Relative chance of landing here (0: only ever the fallback); not all slices may be 0.
    weight = fields.Float(
        required=True,
        allow_nan=False,
        validate=validate.Range(min=0, max=1_000_000, error="Must be 0 to 1,000,000."),
    )
    reward = fields.Nested(SliceRewardSchema, load_default=lambda: {"type": "none"})
    #: How long the code won here stays valid; the spin stores the end, and orders after it do
    #: not redeem the code. Without it the code does not expire.
    expires_in_minutes = fields.Integer(
        strict=True,
        validate=validate.Range(
            1, MAX_CODE_VALID_MINUTES, error=f"Must be 1 to {MAX_CODE_VALID_MINUTES:,} minutes."
        ),
    )

    @validates_schema
    def expiry_needs_a_code(self, data, **kwargs):
        """Only a code can expire: a "no prize" slice takes no expiry."""
        if "expires_in_minutes" in data and data["reward"]["type"] == "none":
            raise ValidationError(
                "A slice without a code has nothing to expire.", "expires_in_minutes"
            )


class EmailCaptureSchema(Schema):
    enabled = fields.Boolean(load_default=False)
    required = fields.Boolean(load_default=True)
    consent_text = LocalText(max_length=500)


class WheelContentSchema(Schema):
    title = LocalText(max_length=200)
    message = LocalText(max_length=500)
    button_label = LocalText(max_length=60)
    slices = fields.List(fields.Nested(SliceSchema), required=True, validate=validate.Length(1, 16))
    email_capture = fields.Nested(EmailCaptureSchema)

    @validates_schema
    def has_fallback(self, data, **kwargs):
        slices = data.get("slices") or []
        if slices and not any(s["weight"] > 0 for s in slices):
            raise ValidationError("At least one slice needs a weight above 0.", "slices")
        if slices and not any(s["reward"]["type"] == "none" for s in slices):
            raise ValidationError(
                "Add a 'no prize' slice (reward type none): the fallback when a pool is empty.",
                "slices",
            )


CONTENT_SCHEMAS = {"survey": SurveyContentSchema, "wheel": WheelContentSchema}


def load_content(kind: str, content, prefix: str = "content") -> dict:
    """A variant's content loaded with the schema of its campaign's kind.

    :raise ValidationFailed: naming the field, e.g. ``variants.0.content.steps.1.next.0.goto``.
    """
    try:
        return CONTENT_SCHEMAS[kind]().load(content)
    except ValidationError as err:
        raise validation_failed(err, prefix) from None
