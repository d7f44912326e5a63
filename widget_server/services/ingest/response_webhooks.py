"""Survey responses announced to a site's ``response_webhook``: the completed ones as the applier
folds them, the ones left unfinished by the worker's scan.

Both only record deliveries (``webhook_deliveries``, in the caller's transaction); the worker's
``deliver-webhooks`` job posts them signed, retries them and keeps their state, as for every
webhook (``services.platform.webhooks``). A response goes to the site's ``response_webhook``
(JSON or a Slack message) and to its ``settings.webhook`` when that subscribes to the event.
Each delivery carries a key made of the response, its round, the event and the receiver,
inserted with ``ON CONFLICT DO NOTHING``: an event applied again, a chunk applied again or a scan
run twice records nothing new, so nothing is sent twice.

A response is *left unfinished* when it is not completed, has had no new answer for
``RESPONSE_PARTIAL_AFTER_MIN`` minutes and its visitor has no event still waiting for the
applier (an answer stored but not yet applied is not taken for silence). The scan reads
responses by id after a watermark kept in the database (``job_watermarks``), at most
``SCAN_LIMIT`` a run, and moves the watermark past every response it is done with; a response
still being answered holds it back until it goes quiet (or for ``GIVE_UP_AFTER`` at most). A
response quiet for a day beyond the idle time when the scan first reads it is history and
announces nothing (``HISTORY``).
"""

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, tuple_

from ...extensions import db
from ...models import (
    Campaign,
    Event,
    JobWatermark,
    Response,
    Site,
    Variant,
    Visitor,
    WebhookDelivery,
)
from ...models.sites import new_message_id
from ...models.types import utcnow
from ...vocabulary import RESPONSE_COMPLETED, RESPONSE_PARTIAL
from ..platform import webhooks
from ..platform.sqlite_lock import take_writer_lock
from ..platform.upsert import insert_ignoring_conflicts
from .responses import answers_in_step_order, questions_of

#: The scan for responses left unfinished, as its watermark is named.
PARTIALS_SCAN = "response-partials"
#: Responses the scan reads per run.
SCAN_LIMIT = 500
#: A response still being answered this long after it started gets no ``response.partial``: it
#: must not hold the scan's watermark back for ever.
GIVE_UP_AFTER = timedelta(days=1)

#: A response already quiet this long (beyond the idle time) when the scan first reads it is
#: history, passed without a partial: the scan's first run on an installation, or after the
#: workers were stopped that long, announces no old responses.
HISTORY = timedelta(days=1)

_DELIVERIES = WebhookDelivery.__table__


def notify_completed(events: list[dict], responses: dict) -> int:
    """Record a ``response.completed`` delivery for each response these just-folded events
    completed, for the sites whose webhook asks for it (two reads and one insert for the whole
    chunk, none per event); how many were recorded.

    ``responses`` is the applier's ``{(campaign, visitor, round): row}``; a completion past a
    quota leaves its response unfinished and announces nothing.
    """
    completed: dict[int, int] = {}
    for event in events:
        if event["type"] != "complete":
            continue
        response = responses.get((event["campaign_id"], event["visitor_id"], event["round"]))
        if response is not None and response.completed:
            completed[response.id] = event["site_id"]
    if not completed:
        return 0
    hooks = _receivers_of(set(completed.values()), RESPONSE_COMPLETED)
    announced = [response_id for response_id, site in completed.items() if site in hooks]
    return _enqueue(RESPONSE_COMPLETED, announced, hooks)


def queue_partials(limit: int = SCAN_LIMIT, now: datetime | None = None) -> int:
    """One run of the scan for responses left unfinished: record their ``response.partial``
    deliveries (once per response round) and move the watermark; commits. How many responses
    it was done with (0 when there was nothing new, so the worker waits before the next run).

    Several workers may run it: on PostgreSQL the watermark row is locked (``SKIP LOCKED``: a
    second scan meanwhile does nothing), on SQLite the writer lock is taken first.
    """
    now = now or utcnow()
    take_writer_lock(db.session)
    insert_ignoring_conflicts(
        JobWatermark, [{"name": PARTIALS_SCAN, "position": 0, "updated_at": now}], ["name"]
    )
    claim = select(JobWatermark).where(JobWatermark.name == PARTIALS_SCAN)
    if db.session.get_bind().dialect.name == "postgresql":
        claim = claim.with_for_update(skip_locked=True)
    watermark = db.session.scalar(claim)
    if watermark is None:
        db.session.rollback()
        return 0
    idle = timedelta(minutes=float(current_app.config["RESPONSE_PARTIAL_AFTER_MIN"]))
    rows = db.session.execute(
        select(
            Response.id,
            Response.completed,
            Response.started_at,
            Response.updated_at,
            Campaign.site_id,
            Visitor.visitor_key,
        )
        .join(Campaign, Campaign.id == Response.campaign_id)
        .join(Visitor, Visitor.id == Response.visitor_id)
        .where(Response.id > watermark.position)
        .order_by(Response.id)
        .limit(limit)
    ).all()
    hooks = _receivers_of({row.site_id for row in rows}, RESPONSE_PARTIAL)
    unfinished = [row for row in rows if row.site_id in hooks and not row.completed]
    busy = _with_pending_events({(row.site_id, row.visitor_key) for row in unfinished})
    unfinished_ids = {row.id for row in unfinished}
    quiet_since = now - idle
    left, passed, waiting = [], 0, False
    for row in rows:
        if row.id in unfinished_ids:
            answering = row.updated_at > quiet_since and row.started_at > now - GIVE_UP_AFTER
            if answering or (row.site_id, row.visitor_key) in busy:
                waiting = True  # the watermark stays before it
            elif quiet_since - HISTORY < row.updated_at <= quiet_since:
                left.append(row)
        if not waiting:
            watermark.position, passed = row.id, passed + 1
    watermark.updated_at = now
    # Those behind a response still being answered are read again by the next runs.
    recorded = _enqueue(RESPONSE_PARTIAL, _not_yet_recorded(left, hooks), hooks)
    db.session.commit()
    return passed + recorded


def _with_pending_events(visitors: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """The (site, visitor key) pairs among these with events the applier has not applied yet
    (their answers may be among them: their silence is not known yet). The pending events'
    index by visitor answers it."""
    if not visitors:
        return set()
    pending = db.session.execute(
        select(Event.site_id, Event.visitor_key)
        .where(Event.pending, tuple_(Event.site_id, Event.visitor_key).in_(sorted(visitors)))
        .distinct()
    ).all()
    return {(site_id, key) for site_id, key in pending}


@dataclass(frozen=True)
class Receiver:
    """Where a site's response events go: a URL, in Slack's format or not, and the suffix of
    the delivery keys of its deliveries (so each receiver gets each response once)."""

    url: str
    slack: bool
    key_suffix: str


def _receivers_of(site_ids: set[int], event: str) -> dict[int, list[Receiver]]:
    """``{site id: its receivers of event}`` of these sites that have any (one read)."""
    if not site_ids:
        return {}
    settings = db.session.execute(
        select(Site.id, Site.settings).where(Site.id.in_(sorted(site_ids)))
    ).all()
    receivers = {site_id: receivers_of(values or {}, event) for site_id, values in settings}
    return {site_id: found for site_id, found in receivers.items() if found}


def receivers_of(settings: dict, event: str) -> list[Receiver]:
    """The site's ``response_webhook`` if it asks for ``event``, and its ``settings.webhook``
    (JSON) if that subscribes to it, unless the first already posts JSON to the same URL."""
    found = []
    hook = settings.get("response_webhook") or {}
    if hook.get("url") and event in hook.get("events", ()):
        found.append(Receiver(hook["url"], hook.get("format") == "slack", ""))
    for url in webhooks.subscribed_urls(settings, event):
        if Receiver(url, False, "") not in found:
            found.append(Receiver(url, False, ":site"))
    return found


def _delivery_key(response_id: int, round_number: int, event: str, receiver: Receiver) -> str:
    return f"response:{response_id}:{round_number}:{event}{receiver.key_suffix}"


def _not_yet_recorded(rows: list, hooks: dict[int, list[Receiver]]) -> list[int]:
    """The responses among these rows that miss a ``response.partial`` delivery to one of their
    site's receivers (one indexed read)."""
    if not rows:
        return []
    rounds = dict(
        db.session.execute(
            select(Response.id, Response.round).where(Response.id.in_([r.id for r in rows]))
        ).all()
    )
    keys = {
        _delivery_key(row.id, rounds[row.id], RESPONSE_PARTIAL, receiver): row.id
        for row in rows
        for receiver in hooks[row.site_id]
    }
    recorded = set(
        db.session.scalars(
            select(_DELIVERIES.c.delivery_key).where(_DELIVERIES.c.delivery_key.in_(list(keys)))
        )
    )
    return sorted({r for key, r in keys.items() if key not in recorded})


def _enqueue(event: str, response_ids: list[int], hooks: dict[int, list[Receiver]]) -> int:
    """Insert the deliveries of ``event`` for these responses to their sites' receivers (one
    statement), skipping those already recorded; how many are new. Partials without any answer
    announce nothing."""
    if not response_ids:
        return 0
    rows = db.session.execute(
        select(
            Response.id,
            Response.round,
            Response.answers,
            Response.hidden,
            Response.variant_id,
            Response.started_at,
            Response.updated_at,
            Response.completed_at,
            Campaign.id.label("campaign_id"),
            Campaign.name.label("campaign_name"),
            Campaign.site_id,
            Site.name.label("site_name"),
            Variant.name.label("variant_name"),
            Visitor.visitor_key,
        )
        .join(Campaign, Campaign.id == Response.campaign_id)
        .join(Site, Site.id == Campaign.site_id)
        .join(Visitor, Visitor.id == Response.visitor_id)
        .outerjoin(Variant, Variant.id == Response.variant_id)
        .where(Response.id.in_(response_ids))
        .order_by(Response.id)
    ).all()
    variant_ids = sorted({row.variant_id for row in rows if row.variant_id is not None})
    contents = dict(
        db.session.execute(
            select(Variant.id, Variant.content).where(Variant.id.in_(variant_ids))
        ).all()
    )
    questions = {v: questions_of(content) for v, content in contents.items()}
    now = utcnow()
    deliveries = []
    for row in rows:
        if event == RESPONSE_PARTIAL and not row.answers:
            continue
        answers = answers_in_step_order(questions.get(row.variant_id, ([], {})), row.answers or {})
        data, message_id = response_data(row, answers), new_message_id()
        for receiver in hooks[row.site_id]:
            if receiver.slack:
                payload = {"text": slack_text(event, data)}
            else:
                payload = webhooks.envelope(event, data, row.completed_at or now)
            key = _delivery_key(row.id, row.round, event, receiver)
            deliveries.append(
                webhooks.delivery_row(
                    row.site_id, receiver.url, event, payload, now, key, message_id
                )
            )
    inserted = insert_ignoring_conflicts(
        WebhookDelivery, deliveries, ["delivery_key"], returning=[_DELIVERIES.c.id]
    )
    return len(inserted)


def response_data(row, answers: list[tuple[str, str, str]]) -> dict:
    """The ``data`` of one response's webhook: the response, its survey and its answers with
    their questions, in step order."""
    values = row.answers or {}
    return {
        "site_id": row.site_id,
        "site_name": row.site_name,
        "campaign_id": row.campaign_id,
        "campaign_name": row.campaign_name,
        "variant_id": row.variant_id,
        "variant_name": row.variant_name,
        "visitor_id": row.visitor_key,
        "response_id": row.id,
        "round": row.round,
        "started_at": row.started_at.isoformat(),
        "last_answer_at": row.updated_at.isoformat(),
        "completed_at": row.completed_at.isoformat() if row.completed_at else None,
        "hidden": row.hidden or {},
        "answers": [
            {
                "step_id": step_id,
                "question": question,
                "value": (values.get(step_id) or {}).get("value"),
                "answer": answer,
            }
            for step_id, question, answer in answers
        ],
    }


def slack_text(event: str, payload: dict) -> str:
    """A Slack message of a response: the survey, then one ``question: answer`` line a step."""
    what = "completed" if event == RESPONSE_COMPLETED else "left unfinished"
    head = f"*{slack_escaped(payload['campaign_name'])}*: a response {what}"
    details = [f"variant {payload['variant_name']}" if payload["variant_name"] else ""]
    if payload["round"] > 1:
        details.append(f"round {payload['round']}")
    if any(details):
        head += f" ({slack_escaped(', '.join(d for d in details if d))})"
    lines = [head]
    lines += [
        f"{slack_escaped(a['question'])}: {slack_escaped(a['answer'])}" for a in payload["answers"]
    ]
    return "\n".join(lines)


def slack_escaped(text: str) -> str:
    """``text`` as Slack shows it literally: ``&``, ``<`` and ``>`` are its markup (links and
    mentions such as ``<!channel>``) and are escaped as Slack asks; line breaks and other
    control or format characters (a right-to-left override) become spaces, so a visitor's text
    stays on its own line."""
    plain = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    return plain.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
