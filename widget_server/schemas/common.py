"""Fields and helpers shared by the API schemas."""

import re

from flask import current_app
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

from .. import json_text
from ..errors import PayloadTooLarge, ValidationFailed, validation_failed
from ..outbound import allowance_of, literal_refusal

# Patterns end with \Z, not $: "$" also matches before a final newline, so "abc12345\n" passed
# as a visitor id and became a second visitor. validate.Regexp calls re.match, which \Z makes a
# full match.
SLUG = re.compile(r"^[A-Za-z0-9_\-]{1,64}\Z")
DIMENSION = re.compile(r"^[a-z][a-z0-9_]{0,31}\Z")
#: The id the snippet makes for a visitor (a UUID), also an event's id.
VISITOR_ID = re.compile(r"^[A-Za-z0-9_\-]{8,64}\Z")
LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*\Z")
MAX_TEXT = 2000
#: Row ids are PostgreSQL ``integer`` columns: a larger id is refused naming its field, before
#: any query (PostgreSQL raises on it; in a streamed CSV that was a 500 after the headers).
MAX_ID = 2**31 - 1
#: What a query string or form may hold for a number: int() also reads "²", "٣", " 3 " and "1_000".
_ASCII_INTEGER = re.compile(r"[+-]?[0-9]{1,32}")


class Integer(fields.Integer):
    """An integer that, given as text (a query string, a form), is written in ASCII digits."""

    def _validated(self, value):
        if isinstance(value, str) and not _ASCII_INTEGER.fullmatch(value):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class RowId(Integer):
    """The id of a row (campaign, variant, pool): 1 to :data:`MAX_ID`."""

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "validate",
            validate.Range(min=1, max=MAX_ID, error=f"Must be an id from 1 to {MAX_ID}."),
        )
        super().__init__(**kwargs)


def form_integer(text: str) -> int | str:
    """The integer a form field holds, or the text itself for a schema to refuse by name."""
    text = text.strip()
    return int(text) if _ASCII_INTEGER.fullmatch(text) else text


class LocalText(fields.Field):
    """Plain text, or ``{"en": "...", "de": "..."}`` texts per locale (the snippet picks one)."""

    def __init__(self, max_length: int = MAX_TEXT, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            texts = {"": value}
        elif isinstance(value, dict) and value:
            texts = value
        else:
            raise ValidationError("Must be a string or an object of texts per locale.")
        for locale, text in texts.items():
            if not isinstance(text, str):
                raise ValidationError(f"Text for locale {locale!r} must be a string.")
            if len(text) > self.max_length:
                raise ValidationError(f"Longer than {self.max_length} characters.")
            if self.required and not text.strip():
                # A question or label a visitor would see as an empty box.
                raise ValidationError(
                    f"Must not be blank{f' (locale {locale!r})' if locale else ''}."
                )
            if locale and not LOCALE.fullmatch(locale):
                raise ValidationError(f"{locale!r} is not a locale code such as 'en' or 'pt-BR'.")
        return value


def slug(**kwargs):
    """An identifier such as a step or option id."""
    return fields.String(
        validate=validate.Regexp(SLUG, error="Use 1-64 letters, digits, '_' or '-'."), **kwargs
    )


def webhook_url_field(**kwargs):
    """A URL the server will call: http(s), and neither localhost nor a literal address that is
    not public (unless ``FUNNELCAKE_WEBHOOK_ALLOWED_HOSTS`` allows it). Host names are resolved
    and checked again each time a webhook is sent."""
    return fields.Url(schemes={"http", "https"}, validate=_callable_webhook_url, **kwargs)


def _callable_webhook_url(url: str) -> None:
    refusal = literal_refusal(url, allowance_of(current_app.config))
    if refusal:
        raise ValidationError(refusal)


class WholeNested(fields.Nested):
    """A nested object that, when given, is validated whole with its defaults, also inside a
    partial load (a PATCH): one setting that needs all its parts (a webhook's URL)."""

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        return super()._deserialize(value, attr, data, partial=False, **kwargs)


def patch_schema(schema_class: type[Schema]) -> Schema:
    """The schema of a PATCH: any top-level field may be left out, but a nested object that is
    given (a trigger, the A/B settings) is validated whole, with its defaults, as on create."""
    return schema_class(partial=tuple(schema_class().fields))


def load_or_raise(schema: Schema, payload, prefix: str = "", **kwargs):
    """Load ``payload`` or raise the API's ValidationFailed naming each bad field."""
    if payload is None:
        raise ValidationFailed("The body must be a JSON object.", {"_schema": ["Missing body."]})
    try:
        return schema.load(payload, **kwargs)
    except ValidationError as err:
        raise validation_failed(err, prefix) from None


def _not_json(constant: str):
    raise ValueError(f"{constant} is not JSON")


def _loads(raw: bytes):
    """The body as the standard library reads it, NaN and Infinity refused (they are not JSON,
    RFC 8259, and PostgreSQL cannot store them); orjson reads it where it reads the same
    (:mod:`widget_server.json_text`): the snippet's requests are the busiest there are."""
    return json_text.loads(raw, parse_constant=_not_json)


def parse_json_body(request, max_bytes: int | None = None):
    """The request body as JSON whatever its content type (the snippet sends text/plain)."""
    raw = request.get_data(cache=True)
    if max_bytes is not None and len(raw) > max_bytes:
        raise PayloadTooLarge(f"The body is larger than {max_bytes} bytes.")
    if not raw:
        raise ValidationFailed("The body must be a JSON object.", {"_schema": ["Empty body."]})
    try:
        payload = _loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ValidationFailed(
            "The body is not valid JSON.", {"_schema": ["Not valid JSON."]}
        ) from None
    if not isinstance(payload, dict):
        raise ValidationFailed(
            "The body must be a JSON object.", {"_schema": ["Must be an object."]}
        )
    return payload


class AnswerSchema(Schema):
    """An answer documented for the clients that parse it; never loaded. Clients must accept
    fields added later, so the document leaves ``additionalProperties`` open."""

    class Meta:
        unknown = EXCLUDE


class ErrorDetailSchema(Schema):
    class Meta:
        unknown = RAISE  # documented as additionalProperties: false

    code = fields.String(required=True)
    message = fields.String(required=True)
    #: The fields at fault, by dotted path (``stages.2.rule``), each with its messages.
    field_messages = fields.Dict(
        keys=fields.String(), values=fields.List(fields.String()), required=True, data_key="fields"
    )


class ErrorSchema(Schema):
    """The body of every failure, as :func:`widget_server.errors.error_response` writes it."""

    class Meta:
        unknown = RAISE

    error = fields.Nested(ErrorDetailSchema, required=True)


class BacklogSchema(AnswerSchema):
    """Events stored but not yet applied, and how long the oldest of them has waited."""

    pending_events = fields.Integer(required=True)
    oldest_pending_age_s = fields.Float(required=True)


class HealthSchema(AnswerSchema):
    """The answer of ``/healthz`` and ``/readyz`` (which adds the applier's backlog)."""

    status = fields.String(required=True)
    events = fields.Nested(BacklogSchema)
