"""Query of the responses table and its CSV export (admin page)."""

from marshmallow import Schema, fields, validate

from .common import SLUG, Integer, RowId


class ResponseQuerySchema(Schema):
    campaign_id = RowId()
    variant_id = RowId()
    stage = fields.String(validate=validate.Regexp(SLUG, error="Not a stage key."))
    date_from = fields.Date()
    date_to = fields.Date()
    completed = fields.String(validate=validate.OneOf(("", "yes", "no")))
    page = Integer(load_default=1, validate=validate.Range(min=1, max=100000))
