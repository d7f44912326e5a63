"""Reads of the events log that must go through its partial indexes of pending events.

PostgreSQL's planner judges by the statistics of the last ANALYZE. A new installation's were
taken while the log was empty, and autovacuum takes them again only a minute or more later; then,
with a backlog a third of the log, the planner reads the whole log to count what is pending (60 ms
a read at half a million events, growing with the log). Reads that only want pending events run on
a connection of their own that rules whole-table reads out for its one transaction.

The applier's chunks rule them out the same way (:data:`NO_TABLE_SCANS`): with those statistics
its claim read and sorted the whole log at every chunk, and its write of the chunk's events
joined them to the whole log; every statement of a chunk reads by key.
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
