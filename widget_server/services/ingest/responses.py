"""Survey responses for the admin page: a filtered, paginated table and a streamed CSV export.

Answers are visitor text: shown escaped by the templates, and in the CSV every cell a spreadsheet
would run as a formula is neutralised (platform/spreadsheets.py).
"""

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select

from ...extensions import db
from ...models import Campaign, Response, Variant, Visitor
from ..platform.local_text import plain
from ..platform.spreadsheets import neutralise

PAGE_SIZE = 50
CHUNK_ROWS = 1000


@dataclass(frozen=True)
class ResponseFilter:
    site_id: int
    campaign_id: int | None = None
    variant_id: int | None = None
    stage: str | None = None
    date_from: object = None  # datetime.date
    date_to: object = None
    completed: str | None = None

    @classmethod
    def from_query(cls, site_id: int, query: dict) -> "ResponseFilter":
        names = ("campaign_id", "variant_id", "stage", "date_from", "date_to", "completed")
        return cls(site_id, **{k: query.get(k) or None for k in names})


@dataclass(frozen=True)
class ResponseRow:
    id: int
    campaign_id: int
    campaign: str
    variant: str | None
    visitor: str
    stage: str | None
    #: 1, or the showing of a recurring survey this response answers.
    round: int
    completed: bool
    #: A partial response's last answered step (``(step id, question)`` in the survey's order):
    #: where the visitor dropped off. None once completed.
    dropped_after: tuple[str, str] | None
    started_at: datetime
    updated_at: datetime
    #: The variant's hidden fields as stored with the response (``{name: text}``).
    hidden: dict
    #: ``[(step id, question, answer as text)]`` in the survey's step order.
    answers: list[tuple[str, str, str]]


def _query(flt: ResponseFilter):
    query = (
        select(
            Response,
            Campaign.name.label("campaign_name"),
            Variant.name.label("variant_name"),
            Visitor.visitor_key,
            Visitor.stage,
        )
        .join(Campaign, Campaign.id == Response.campaign_id)
        .join(Visitor, Visitor.id == Response.visitor_id)
        .outerjoin(Variant, Variant.id == Response.variant_id)
        .where(Campaign.site_id == flt.site_id)
    )
    if flt.campaign_id:
        query = query.where(Response.campaign_id == flt.campaign_id)
    if flt.variant_id:
        query = query.where(Response.variant_id == flt.variant_id)
    if flt.stage:
        query = query.where(Visitor.stage == flt.stage)
    if flt.date_from:
        query = query.where(Response.updated_at >= datetime.combine(flt.date_from, time(), UTC))
    # Up to the end of date_to; the last day a date can name (9999-12-31) has no next day to stop
    # before, and nothing is later, so it bounds nothing.
    if flt.date_to and flt.date_to < date.max:
        end = datetime.combine(flt.date_to + timedelta(days=1), time(), UTC)
        query = query.where(Response.updated_at < end)
    if flt.completed == "yes":
        query = query.where(Response.completed.is_(True))
    elif flt.completed == "no":
        query = query.where(Response.completed.is_(False))
    return query


class _Questions:
    """Question texts and option labels per variant, read once per variant."""

    def __init__(self):
        self.cache: dict[int | None, tuple[list, dict]] = {}

    def of(self, variant_id: int | None) -> tuple[list, dict]:
        if variant_id not in self.cache:
            content = {}
            if variant_id is not None:
                content = db.session.scalar(select(Variant.content).where(Variant.id == variant_id))
            self.cache[variant_id] = questions_of(content)
        return self.cache[variant_id]

    def answers(self, variant_id: int | None, answers: dict) -> list[tuple[str, str, str]]:
        return answers_in_step_order(self.of(variant_id), answers)


def questions_of(content: dict | None) -> tuple[list, dict]:
    """A variant's questions in step order, ``[(step_id, question)]``, and its option labels,
    ``{step_id: {option_id: label}}``."""
    steps = (content or {}).get("steps") or []
    order = [(s["id"], plain(s.get("question"))) for s in steps]
    labels = {
        s["id"]: {o["id"]: plain(o.get("label")) for o in s.get("options") or []} for s in steps
    }
    return order, labels


def answers_in_step_order(
    questions: tuple[list, dict], answers: dict
) -> list[tuple[str, str, str]]:
    """``(step_id, question, answer as words)`` of each answered step, in the variant's step
    order (steps no longer in the variant last, by id)."""
    order, labels = questions
    known = [step_id for step_id, _ in order]
    texts = dict(order)
    rows = []
    for step_id in known + sorted(set(answers) - set(known)):
        if step_id in answers:
            value = (answers[step_id] or {}).get("value")
            rows.append(
                (step_id, texts.get(step_id, step_id), answer_text(value, labels.get(step_id, {})))
            )
    return rows


def answer_text(value, labels: dict) -> str:
    """An answer as words: option ids become their labels; lists are joined."""
    if isinstance(value, list):
        return ", ".join(answer_text(v, labels) for v in value)
    if value is None:
        return ""
    if isinstance(value, str):
        return labels.get(value, value)
    if isinstance(value, bool | int | float):
        return str(value)
    return json.dumps(value)


def list_responses(flt: ResponseFilter, page: int = 1) -> tuple[list[ResponseRow], int]:
    """One page of responses, newest first, and how many match in all."""
    total = db.session.scalar(select(func.count()).select_from(_query(flt).subquery()))
    rows = db.session.execute(
        _query(flt)
        .order_by(Response.updated_at.desc(), Response.id.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    questions = _Questions()
    return [_row(r, questions) for r in rows], int(total or 0)


def _row(row, questions: _Questions) -> ResponseRow:
    response = row.Response
    answers = questions.answers(response.variant_id, response.answers or {})
    return ResponseRow(
        id=response.id,
        campaign_id=response.campaign_id,
        campaign=row.campaign_name,
        variant=row.variant_name,
        visitor=row.visitor_key,
        stage=row.stage,
        round=response.round,
        completed=response.completed,
        dropped_after=None if response.completed or not answers else answers[-1][:2],
        started_at=response.started_at,
        updated_at=response.updated_at,
        hidden=response.hidden or {},
        answers=answers,
    )


def csv_rows(flt: ResponseFilter) -> Iterator[str]:
    """The matching responses as CSV text, a chunk at a time, formula-like cells neutralised.

    With a campaign chosen, each question is a column; otherwise the answers are one column of
    ``question: answer`` lines. The hidden fields are one column of ``name: value`` lines.
    """
    step_columns: list[tuple[str, str]] = []
    if flt.campaign_id:
        seen = set()
        for content in db.session.scalars(
            select(Variant.content).where(Variant.campaign_id == flt.campaign_id)
        ):
            for step in (content or {}).get("steps") or []:
                if step["id"] not in seen:
                    seen.add(step["id"])
                    step_columns.append((step["id"], plain(step.get("question"))))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    header = ["response_id", "campaign", "variant", "visitor_id", "stage", "round", "completed"]
    header += ["dropped_off_after"]
    header += ["started_at", "updated_at", "hidden"]
    header += [f"{step_id}: {question}" for step_id, question in step_columns] or ["answers"]
    writer.writerow([neutralise(cell) for cell in header])
    questions = _Questions()
    query = _query(flt).order_by(Response.id).execution_options(yield_per=CHUNK_ROWS)
    for count, row in enumerate(db.session.execute(query), start=1):
        item = _row(row, questions)
        cells = [
            item.id,
            item.campaign,
            item.variant or "",
            item.visitor,
            item.stage or "",
            item.round,
            "yes" if item.completed else "no",
            item.dropped_after[0] if item.dropped_after else "",
            item.started_at.isoformat(),
            item.updated_at.isoformat(),
            "\n".join(f"{name}: {value}" for name, value in sorted(item.hidden.items())),
        ]
        if step_columns:
            by_step = {step_id: text for step_id, _, text in item.answers}
            cells += [by_step.get(step_id, "") for step_id, _ in step_columns]
        else:
            cells.append("\n".join(f"{q}: {a}" for _, q, a in item.answers))
        writer.writerow([neutralise(cell) for cell in cells])
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
