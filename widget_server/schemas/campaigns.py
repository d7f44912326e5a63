"""Admin API schemas for campaigns and variants: targeting, triggers, frequency, A/B settings."""

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from ..vocabulary import (
    AB_DEFAULTS,
    ADJUSTMENTS,
    CAMPAIGN_KINDS,
    GUARDRAIL_METRICS,
    METHODS,
    METRICS,
    PHASE_ASSIGNMENTS,
    TARGETING_ATTRIBUTE_OPS,
)
from .common import SLUG, LocalText, RowId, webhook_url_field
from .content import load_content

DEVICES = ("mobile", "tablet", "desktop")
TRIGGER_TYPES = (
    "immediate",
    "delay",
    "exit_intent",
    "scroll",
    "page_views",
    "inactivity",
    "manual",
)
#: Bounds on URL patterns, which are matched against every decide's URL
#: (services/campaigns/url_patterns.py): the work per pattern grows with its pieces between stars
#: and with the patterns per list.
URL_PATTERN_MAX_LENGTH = 500
URL_PATTERN_MAX_STARS = 10
URL_PATTERNS_MAX = 50
TEASER_SIDES = ("right", "left")
TEASER_MAX_DAYS = 30


def _few_stars(pattern: str) -> None:
    if pattern.count("*") > URL_PATTERN_MAX_STARS:
        raise ValidationError(f"At most {URL_PATTERN_MAX_STARS} * in a pattern.")


def url_patterns() -> fields.List:
    """A list of ``url_include``/``url_exclude`` patterns, each bounded in length and stars."""
    return fields.List(
        fields.String(validate=[validate.Length(1, URL_PATTERN_MAX_LENGTH), _few_stars]),
        validate=validate.Length(max=URL_PATTERNS_MAX),
        load_default=list,
    )


class AttributeRuleSchema(Schema):
    key = fields.String(required=True, validate=validate.Length(1, 64))
    op = fields.String(required=True, validate=validate.OneOf(TARGETING_ATTRIBUTE_OPS))
    value = fields.Raw()
    values = fields.List(fields.Raw(), validate=validate.Length(1, 100))
    min = fields.Float(allow_nan=False)
    max = fields.Float(allow_nan=False)

    @validates_schema
    def operands(self, data, **kwargs):
        need = {"equals": ("value",), "in": ("values",), "range": ()}[data["op"]]
        for name in need:
            if name not in data:
                raise ValidationError(f"The {data['op']} rule needs {name}.", name)
        if data["op"] == "range" and "min" not in data and "max" not in data:
            raise ValidationError("A range needs min, max or both.", "min")


class TargetingSchema(Schema):
    url_include = url_patterns()
    url_exclude = url_patterns()
    devices = fields.List(fields.String(validate=validate.OneOf(DEVICES)))
    visitor = fields.String(
        load_default="any", validate=validate.OneOf(("any", "new", "returning"))
    )
    orders_min = fields.Integer(validate=validate.Range(min=0))
    orders_max = fields.Integer(validate=validate.Range(min=0))
    stages_in = fields.List(fields.String(validate=validate.Regexp(SLUG)))
    stages_not_in = fields.List(fields.String(validate=validate.Regexp(SLUG)))
    attributes = fields.List(fields.Nested(AttributeRuleSchema), validate=validate.Length(max=20))
    cart_value_min = fields.Float(allow_nan=False, validate=validate.Range(min=0))
    cart_value_max = fields.Float(allow_nan=False, validate=validate.Range(min=0))
    cart_items_min = fields.Integer(validate=validate.Range(min=0))
    cart_items_max = fields.Integer(validate=validate.Range(min=0))


class TriggerSchema(Schema):
    type = fields.String(load_default="delay", validate=validate.OneOf(TRIGGER_TYPES))
    seconds = fields.Float(allow_nan=False, validate=validate.Range(0, 3600))
    percent = fields.Integer(validate=validate.Range(1, 100))
    count = fields.Integer(validate=validate.Range(1, 1000))

    @validates_schema
    def parameters(self, data, **kwargs):
        need = {
            "delay": "seconds",
            "inactivity": "seconds",
            "scroll": "percent",
            "page_views": "count",
        }.get(data["type"])
        if need and need not in data:
            raise ValidationError(f"A {data['type']} trigger needs {need}.", need)


class AnswerQuotaSchema(Schema):
    """Stop the survey once ``max`` respondents gave ``option_id`` to step ``step_id``."""

    step_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    option_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    max = fields.Integer(required=True, validate=validate.Range(min=1))


class TeaserSchema(Schema):
    """The side tab a closed popup leaves behind, which reopens it (``frequency.teaser``).

    ``days``: the tab stays on later page views for this many days after the latest close;
    left out (or null), it stays for the rest of the page view of the close only.
    """

    text = LocalText(required=True, max_length=40)
    side = fields.String(load_default="right", validate=validate.OneOf(TEASER_SIDES))
    days = fields.Integer(
        allow_none=True,
        load_default=None,
        strict=True,
        validate=validate.Range(1, TEASER_MAX_DAYS),
    )


class FrequencySchema(Schema):
    max_impressions = fields.Integer(validate=validate.Range(min=1))
    days_after_close = fields.Float(allow_nan=False, validate=validate.Range(min=0))
    stop_after_complete = fields.Boolean(load_default=True)
    #: A completed survey is shown again this many days after the completion (quarterly NPS:
    #: 90); each showing is a new round of the visitor's response.
    repeat_after_days = fields.Float(allow_nan=False, validate=validate.Range(min=1, max=3650))
    #: Completed responses after which the survey completes; never overshoots (the applier
    #: counts them under the campaign's lock).
    max_responses = fields.Integer(validate=validate.Range(min=1))
    answer_quotas = fields.List(fields.Nested(AnswerQuotaSchema), validate=validate.Length(max=20))
    sampling_percent = fields.Float(
        load_default=100.0, allow_nan=False, validate=validate.Range(0, 100)
    )
    teaser = fields.Nested(TeaserSchema, allow_none=True)


class GuardrailSchema(Schema):
    """A guardrail metric: a winner significantly worse than the control on it by more than
    ``max_drop`` (relative; for the close rate, a rise) is not promoted."""

    metric = fields.String(required=True, validate=validate.OneOf(GUARDRAIL_METRICS))
    max_drop = fields.Float(
        load_default=0.0,
        allow_nan=False,
        validate=validate.Range(0, 1, max_inclusive=False, error="Must be at least 0, below 1."),
    )


def _each_metric_once(guardrails: list) -> None:
    metrics = [g["metric"] for g in guardrails]
    if len(set(metrics)) != len(metrics):
        raise ValidationError("Name each metric at most once.")


class ABSettingsSchema(Schema):
    """A campaign's A/B settings; what is left out takes the A/B engine's default."""

    metric = fields.String(validate=validate.OneOf(METRICS))
    method = fields.String(load_default=AB_DEFAULTS["method"], validate=validate.OneOf(METHODS))
    alpha = fields.Float(load_default=AB_DEFAULTS["alpha"], validate=validate.Range(0.001, 0.2))
    holdout_percent = fields.Float(load_default=0.0, validate=validate.Range(0, 50))
    auto_promote = fields.Boolean(load_default=True)
    min_visitors_per_variant = fields.Integer(
        load_default=AB_DEFAULTS["min_visitors_per_variant"], validate=validate.Range(min=1)
    )
    min_running_days = fields.Float(
        load_default=AB_DEFAULTS["min_running_days"], validate=validate.Range(min=0)
    )
    min_lift = fields.Float(load_default=AB_DEFAULTS["min_lift"], validate=validate.Range(min=0))
    max_duration_days = fields.Float(
        load_default=AB_DEFAULTS["max_duration_days"], validate=validate.Range(min=1)
    )
    max_visitors_per_variant = fields.Integer(
        load_default=AB_DEFAULTS["max_visitors_per_variant"], validate=validate.Range(min=100)
    )
    webhook_url = webhook_url_field()
    #: Left out: revenue per visitor and order rate on a site that reports orders; ``[]``: none.
    guardrails = fields.List(
        fields.Nested(GuardrailSchema),
        validate=[validate.Length(max=len(GUARDRAIL_METRICS)), _each_metric_once],
    )
    adjustment = fields.String(
        load_default=AB_DEFAULTS["adjustment"], validate=validate.OneOf(ADJUSTMENTS)
    )


class VariantSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(1, 200))
    is_control = fields.Boolean(load_default=False)
    weight = fields.Float(
        load_default=1.0,
        allow_nan=False,
        validate=validate.Range(min=0, error="Must be 0 or more."),
    )
    content = fields.Dict(required=True)


class CampaignSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    kind = fields.String(required=True, validate=validate.OneOf(CAMPAIGN_KINDS))
    priority = fields.Integer(load_default=0, validate=validate.Range(-1000, 1000))
    targeting = fields.Nested(TargetingSchema, load_default=dict)
    trigger = fields.Nested(TriggerSchema, load_default=lambda: {"type": "delay", "seconds": 3})
    frequency = fields.Nested(FrequencySchema, load_default=dict)
    ab = fields.Nested(ABSettingsSchema, load_default=dict)
    variants = fields.List(fields.Nested(VariantSchema), validate=validate.Length(max=10))

    @post_load
    def _load_variant_contents(self, data, **kwargs):
        for index, variant in enumerate(data.get("variants") or ()):
            variant["content"] = load_content(
                data["kind"], variant["content"], f"variants.{index}.content"
            )
        return data


class PhaseChoiceSchema(Schema):
    """What happens to the assignments when an edit starts a new phase of a running campaign:
    ``sticky`` (visitors keep their variant; only those first exposed from now on count in the
    new phase) or ``rerandomize`` (every visitor is assigned afresh in the new phase)."""

    assignments = fields.String(required=True, validate=validate.OneOf(PHASE_ASSIGNMENTS))


class CampaignUpdateSchema(CampaignSchema):
    """Every field optional; ``kind`` cannot change once created. ``phase`` is the choice an
    edit of a running campaign's targeting or trigger needs (it starts a new phase)."""

    phase = fields.Nested(PhaseChoiceSchema, load_only=True)

    class Meta:
        exclude = ("kind", "variants")


class VariantCreateSchema(VariantSchema):
    """A new variant; ``phase`` as in :class:`CampaignUpdateSchema` (a variant added to a test in
    progress changes the split: it starts a new phase)."""

    phase = fields.Nested(PhaseChoiceSchema, load_only=True)


class VariantUpdateSchema(VariantSchema):
    """A variant's PATCH; ``phase`` as in :class:`CampaignUpdateSchema` (content and weight of
    a running campaign's variant start a new phase)."""

    phase = fields.Nested(PhaseChoiceSchema, load_only=True)


class PromoteSchema(Schema):
    """``POST campaigns/<id>/promote``: the variant that takes all non-holdout traffic."""

    variant_id = RowId(required=True, strict=True)


class FromTemplateSchema(Schema):
    """``POST sites/<id>/campaigns/from-template``: a template's draft, optionally renamed; a
    wheel's prize from one of the site's coupon pools (else a placeholder code to edit)."""

    template = fields.String(required=True, validate=validate.Length(1, 64))
    name = fields.String(validate=validate.Length(1, 200))
    pool_id = RowId(strict=True)
