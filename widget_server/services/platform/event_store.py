"""The events write path: rows for the events table stored in one statement per group commit.

The events endpoint stores the browser's batches here, and decide the visits and assignments it
makes (:mod:`..visitors.decided`). Requests storing at the same moment share one transaction
(:mod:`.group_commit`); each returns once the transaction holding its rows has committed, so
what it answers is durable. Ids already stored are skipped: storing twice stores once.

With ``EVENTS_APPLY_INLINE`` (the tests, tiny installs) the rows are stored and applied in the
caller's request by the function the ingest area registers (:func:`applies_inline`): this area
sits below it and cannot call the applier itself.
"""

from collections.abc import Callable

from flask import current_app

from ...extensions import db
from ...models import Event
from .group_commit import GroupCommit
from .reconnect import once_more_if_disconnected
from .sqlite_lock import write_when_unlocked
from .upsert import json_insert

_EVENTS = Event.__table__
_EVENT_KEY = ("site_id", "event_uuid")
_WRITER_KEY = "funnelcake.event_writer"
_inline: list[Callable[[list[dict]], int]] = []


def applies_inline(store_and_apply: Callable[[list[dict]], int]):
    """Register how rows are stored and applied at once under ``EVENTS_APPLY_INLINE``."""
    _inline[:] = [store_and_apply]
    return store_and_apply


def store(rows: list[dict]) -> int:
    """Store these rows (events-table columns, ``pending``); how many were new."""
    if current_app.config["EVENTS_APPLY_INLINE"] and _inline:
        return _inline[0](rows)
    return _writer().submit(rows)


def _writer() -> GroupCommit:
    """This app's group commit of event batches (one per process and app)."""
    found = current_app.extensions.get(_WRITER_KEY)
    if found is None:
        found = current_app.extensions.setdefault(_WRITER_KEY, GroupCommit(_store_batches))
    return found


def _store_batches(batches: list[list[dict]]) -> list[int]:
    """Store the batches of the requests grouped together in one statement and one transaction,
    on a connection of its own (the session's bookkeeping cost more than the insert); how many
    events of each batch were new. An event sent in two of them counts for the first."""
    rows = [row for batch in batches for row in batch]
    sql, parameters = json_insert(db.engine.dialect, _EVENTS, rows, _EVENT_KEY)

    def write() -> list[tuple]:
        return write_when_unlocked(
            db.engine, lambda connection: connection.exec_driver_sql(sql, parameters).all()
        )

    # Storing twice stores once: ids already stored are skipped.
    new = set(once_more_if_disconnected(write))
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
