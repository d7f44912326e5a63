"""The segments export: one CSV row per visitor, streamed in constant memory.

Rows are read with ``yield_per`` (a server-side cursor on PostgreSQL) and written out a chunk at
a time. Every text cell that a spreadsheet would run as a formula is prefixed with ``'``: one
starting with ``=``, ``+``, ``-``, ``@`` or their full-width forms (which some spreadsheets read
as the ASCII ones), also after leading whitespace (which spreadsheets trim on import), and one
starting with a tab, carriage return or line feed.
"""

import csv
import io
import json
from collections.abc import Iterator

from sqlalchemy import select

from ...extensions import db
from ...models import Campaign, Variant, Visitor
from ..platform.spreadsheets import neutralise
from .scoring import scoring_of
from .stages import site_stages

CHUNK_ROWS = 1000


def _rule_dimensions(rule, found: set) -> None:
    if isinstance(rule, dict):
        if isinstance(rule.get("score"), str):
            found.add(rule["score"])
        for value in rule.values():
            _rule_dimensions(value, found)
    elif isinstance(rule, list):
        for item in rule:
            _rule_dimensions(item, found)


def site_dimensions(site_id: int) -> list[str]:
    """The dimensions the site's surveys and stage rules can score: the score columns."""
    found = {"csat", "nps"}
    contents = db.session.scalars(
        select(Variant.content)
        .join(Campaign, Campaign.id == Variant.campaign_id)
        .where(Campaign.site_id == site_id, Campaign.kind == "survey")
    )
    for content in contents:
        for step in scoring_of(content).values():
            if step.value_dimension:
                found.add(step.value_dimension)
            found.update(dimension for dimension, _ in step.options.values())
    for stage in site_stages(site_id):
        _rule_dimensions(stage.rule, found)
    return sorted(found)


def segment_rows(site_id: int) -> Iterator[str]:
    """The CSV text, a chunk of rows at a time (header first)."""
    dimensions = site_dimensions(site_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(
        [
            "visitor_id",
            "customer_id",
            "email",
            "stage",
            "order_count",
            "total_spent",
            *(f"score_{d}" for d in dimensions),
            "attributes",
            "first_seen_at",
            "last_seen_at",
        ]
    )
    query = (
        select(
            Visitor.visitor_key,
            Visitor.customer_id,
            Visitor.email,
            Visitor.email_consent,
            Visitor.stage,
            Visitor.order_count,
            Visitor.total_spent,
            Visitor.scores,
            Visitor.attributes,
            Visitor.first_seen_at,
            Visitor.last_seen_at,
        )
        .where(Visitor.site_id == site_id, Visitor.merged_into_id.is_(None))
        .order_by(Visitor.id)
        .execution_options(yield_per=CHUNK_ROWS)
    )
    rows_in_buffer = 0
    for row in db.session.execute(query):
        scores = row.scores or {}
        writer.writerow(
            [
                neutralise(row.visitor_key),
                neutralise(row.customer_id or ""),
                neutralise(row.email if row.email_consent and row.email else ""),
                neutralise(row.stage or ""),
                row.order_count,
                f"{row.total_spent:.2f}",
                *(("" if scores.get(d) is None else scores[d]) for d in dimensions),
                neutralise(json.dumps(row.attributes or {}, ensure_ascii=False, sort_keys=True)),
                row.first_seen_at.isoformat(),
                row.last_seen_at.isoformat(),
            ]
        )
        rows_in_buffer += 1
        if rows_in_buffer >= CHUNK_ROWS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            rows_in_buffer = 0
    yield buffer.getvalue()
