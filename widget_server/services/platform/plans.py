"""Reads of the events log that must go through its partial indexes of pending events.

PostgreSQL's planner judges by the statistics of the last ANALYZE. A new installation's were
taken while the log was empty, and autovacuum takes them again only a minute or more later; then,
with a backlog a third of the log, the planner reads the whole log to count what is pending (60 ms
a read at half a million events, growing with the log). Reads that only want pending events run on
a connection of their own that rules whole-table reads out for its one transaction.

The applier's chunks rule them out the same way (:data:`NO_TABLE_SCANS`): with those statistics
its claim read and sorted the whole log at every chunk, and its write of the chunk's events
joined them to the whole log; every statement of a chunk reads by key.

Ruling table scans out is not always enough: the driver prepares a statement run often and
PostgreSQL keeps the plan it made first, which for a read keyed on an index's second column (a
primary key whose first column the read also names) can walk the whole index once per key.
Such a read runs unprepared (:func:`rows_planned_per_run`), planned for its values every time.
"""

from contextlib import contextmanager

from ...extensions import db

#: For the rest of the transaction, whole-table reads only where no index serves.
NO_TABLE_SCANS = "SET LOCAL enable_seqscan = off"


@contextmanager
def through_indexes():
    """A connection whose transaction reads tables through their indexes (on PostgreSQL)."""
    with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(NO_TABLE_SCANS)
        yield connection


def rows_planned_per_run(sql: str, params: dict) -> list[tuple]:
    """The rows of a PostgreSQL read (driver SQL) on the session's connection, planned for these
    ``params`` rather than by a plan the server kept from an earlier run."""
    with db.session.connection().connection.driver_connection.cursor() as cursor:
        cursor.execute(sql, params, prepare=False)
        return cursor.fetchall()
