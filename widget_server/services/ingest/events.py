"""Events: the endpoint validates a batch and stores it in one statement; the applier folds it.

A batch is validated whole (a 4xx rejects it whole, so the snippet drops nothing silently: it is
told). The insert skips ids already stored, so sending a batch twice stores it once, and the
answer counts the duplicates. A stored event is durable when the 202 goes out: the applier
(:mod:`.applier`, run by ``funnelcake worker``) folds it into assignments, responses, rollups and
stages shortly after. Nothing here reads or locks a visitor, an assignment or a response.
"""

import json
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from ...errors import PayloadTooLarge, ValidationFailed
from ...extensions import db
from ...models import Campaign, Event, Variant
from ...models.types import utcnow
from ..campaigns.site_config import SiteConfig
from ..platform.group_commit import GroupCommit
from ..platform.reconnect import once_more_if_disconnected
from ..platform.sqlite_lock import write_when_unlocked
from ..platform.upsert import insert_json_rows, json_insert, sqlite_insert
from ..visitors.state import DECIDING_EVENT_TYPES
from ..visitors.state_store import forget_visitors
from . import applier

MAX_EVENT_BYTES = 32 * 1024


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int


#: Written out again, an event's JSON is at most this many times its bytes in the body: a
#: character becomes at most a 6-byte \uXXXX escape for 2 bytes or more of UTF-8, and a number
#: at most 4.5 times its digits (``1e15`` is ``1000000000000000.0``).
_MAX_GROWTH = 6


def check_event_sizes(raw_events: list, body_bytes: int) -> None:
    """:raise PayloadTooLarge: one event is over 32 KB.

    A body too small to hold such an event (the snippet's batches are a few KB) is not measured
    event by event."""
    if body_bytes * _MAX_GROWTH <= MAX_EVENT_BYTES:
        return
    for index, raw in enumerate(raw_events):
        if len(json.dumps(raw, separators=(",", ":"))) > MAX_EVENT_BYTES:
            raise PayloadTooLarge(
                f"Event {index} is larger than {MAX_EVENT_BYTES} bytes.",
                {f"events.{index}": ["Larger than 32 KB."]},
            )


def ingest(site: SiteConfig, events: list[dict]) -> IngestResult:
    """Store a validated batch as pending events, in one statement; ids already stored are
    skipped. With ``EVENTS_APPLY_INLINE`` (tests, tiny installs) the new events are applied in
    the same request; otherwise the applier does it.

    Requests storing at the same moment share one transaction (:mod:`..platform.group_commit`);
    each answers once the transaction holding its events has committed."""
    now = utcnow()
    _check_campaigns(site, events)
    rows = []
    seen_in_batch = set()
    for event in events:
        if event["id"] in seen_in_batch:
            continue
        seen_in_batch.add(event["id"])
        ts = event.get("ts")
        rows.append(
            {
                "site_id": site.id,
                "event_uuid": event["id"],
                "type": event["type"],
                "visitor_key": event["visitor_id"],
                "campaign_id": event.get("campaign_id"),
                # The browser's claim, checked against the assignment when applied.
                "variant_id": event.get("variant_id"),
                "pending": True,
                "occurred_at": min(ts, now) if ts else now,
                "received_at": now,
                "data": event.get("data") or {},
            }
        )
    if current_app.config["EVENTS_APPLY_INLINE"]:
        result = _store_and_apply(site, rows, len(events))
    else:
        inserted = _writer().submit(rows)
        result = IngestResult(accepted=inserted, duplicates=len(events) - inserted)
    if result.accepted:
        # Stored: the next decide of these browsers reads them (with the pending ones).
        forget_visitors(site.id, {r["visitor_key"] for r in rows if r["type"] in _DECIDING})
    return result


#: What changes a visitor's next decide: impressions, closes, completions, and answers (the
#: stage they move once applied).
_DECIDING = (*DECIDING_EVENT_TYPES, "answer")


_EVENTS = Event.__table__
_EVENT_KEY = ("site_id", "event_uuid")
_WRITER_KEY = "funnelcake.event_writer"


def _writer() -> GroupCommit:
    """This app's group commit of event batches (one per process and app)."""
    found = current_app.extensions.get(_WRITER_KEY)
    if found is None:
        found = current_app.extensions.setdefault(_WRITER_KEY, GroupCommit(_store_batches))
    return found


def _store_batches(batches: list[list[dict]]) -> list[int]:
    """Store the batches of the requests grouped together in one transaction, on a connection
    of its own (the session's bookkeeping cost more than the insert); how many events of each
    batch were new. An event sent in two of them counts for the first.

    PostgreSQL takes all the rows in one statement (one round trip). SQLite, in the process,
    takes each batch as an ``executemany`` of one prepared insert, whose count of changed rows
    is the batch's new events: cheaper than unpacking the rows from JSON, as PostgreSQL does."""
    engine = db.engine
    if not any(batches):
        return [0] * len(batches)
    if engine.dialect.name == "sqlite":
        insert, parameters = sqlite_insert(engine.dialect, _EVENTS, batches, _EVENT_KEY)

        def store() -> list[int]:
            return write_when_unlocked(engine, lambda c: _insert_each(c, insert, parameters))

        return once_more_if_disconnected(store)
    rows = [row for batch in batches for row in batch]
    sql, parameters = json_insert(engine.dialect, _EVENTS, rows, _EVENT_KEY)

    def store_all() -> list[tuple]:
        # One statement is its own transaction: in autocommit it is one round trip, where an
        # explicit transaction costs three (BEGIN, the insert, COMMIT). Durable when it returns.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            return connection.exec_driver_sql(sql, parameters).all()

    # Storing twice stores once: ids already stored are skipped. Plain tuples: looking a
    # row's key up among SQLAlchemy's row objects compares them in Python, value by value.
    new = set(map(tuple, once_more_if_disconnected(store_all)))
    counts = []
    for batch in batches:
        count = 0
        for row in batch:
            key = (row["site_id"], row["event_uuid"])
            if key in new:
                new.discard(key)
                count += 1
        counts.append(count)
    return counts


def _insert_each(connection, insert: str, batches: list[list[tuple]]) -> list[int]:
    """Each batch's rows with one ``executemany``; how many of each were new."""
    return [connection.exec_driver_sql(insert, rows).rowcount if rows else 0 for rows in batches]


def _store_and_apply(site: SiteConfig, rows: list[dict], sent: int) -> IngestResult:
    """Store the batch, then apply its new events at once (``EVENTS_APPLY_INLINE``)."""
    inserted = len(insert_json_rows(db.session.connection(), _EVENTS, rows, _EVENT_KEY))
    db.session.commit()
    if inserted:
        new_ids = db.session.scalars(
            select(Event.id)
            .where(
                Event.site_id == site.id,
                Event.event_uuid.in_([row["event_uuid"] for row in rows]),
                Event.pending,
            )
            .order_by(Event.id)
        ).all()
        applier.apply_events(list(new_ids))
        db.session.commit()
    return IngestResult(accepted=inserted, duplicates=sent - inserted)


def _check_campaigns(site: SiteConfig, events: list[dict]) -> None:
    """Every campaign and variant named must be this site's, and the variant its campaign's.

    The site's cached running campaigns answer for nearly every event; only ids they do not
    know (a paused campaign's, a campaign started since the cache) are looked up.

    :raise ValidationFailed: naming ``events.<i>.campaign_id`` or ``events.<i>.variant_id``.
    """
    cached = site.campaign_of_variant
    running = set(cached.values())
    unknown = [
        e
        for e in events
        if (e.get("campaign_id") and e["campaign_id"] not in running)
        or (e.get("variant_id") and cached.get(e["variant_id"]) != e.get("campaign_id"))
    ]
    if not unknown:
        return
    variant_ids = {e["variant_id"] for e in unknown if e.get("variant_id")}
    campaign_ids = {e["campaign_id"] for e in unknown if e.get("campaign_id")}
    known_campaigns = running | set(
        db.session.scalars(
            select(Campaign.id).where(Campaign.site_id == site.id, Campaign.id.in_(campaign_ids))
        )
    )
    campaign_of_variant = cached | dict(
        db.session.execute(
            select(Variant.id, Variant.campaign_id).where(Variant.id.in_(variant_ids))
        ).all()
    )
    errors = {}
    for index, event in enumerate(events):
        campaign_id, variant_id = event.get("campaign_id"), event.get("variant_id")
        if campaign_id and campaign_id not in known_campaigns:
            errors[f"events.{index}.campaign_id"] = ["No such campaign on this site."]
        elif variant_id and campaign_of_variant.get(variant_id) != campaign_id:
            errors[f"events.{index}.variant_id"] = ["Not a variant of this campaign."]
    if errors:
        raise ValidationFailed("Some events name an unknown campaign or variant.", errors)
