"""Waiting for SQLite's one writer lock without stopping the whole web worker.

SQLite lets one connection write at a time; the others wait inside the sqlite3 C library
(``busy_timeout``), which holds the process. In a gevent worker that stops every request the
worker holds, not only the one that waits: while the applier folds a chunk, each worker that
reaches a write freezes until the chunk commits, and the cores sit idle. Here the wait happens
in Python instead: the write is tried with no wait at all, and while the lock is taken the
request sleeps briefly (a cooperative sleep under gevent), so the worker serves its other
requests meanwhile (their events join the next group commit).
"""

import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from ...extensions import SQLITE_BUSY_TIMEOUT_MS
from ...models import Event

T = TypeVar("T")

#: The longest a write waits for the lock, as the connections' ``busy_timeout`` does.
LOCK_WAIT_S = SQLITE_BUSY_TIMEOUT_MS / 1000
#: Pauses between tries, doubling from the first to the last: a request's write holds the lock
#: for a millisecond, the applier's chunk for tens.
FIRST_RETRY_S = 0.001
LAST_RETRY_S = 0.008


def write_when_unlocked(engine, write: Callable[..., T]) -> T:
    """``write(connection)`` in a transaction of its own; on SQLite, waiting for the writer lock
    cooperatively (other databases lock rows, not the file: there it simply runs). ``write``
    may run several times (each try is rolled back): keep it to statements made beforehand."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            return write(connection)
    with engine.connect() as connection, _no_busy_wait(connection):

        def attempt() -> T:
            with connection.begin():
                return write(connection)

        return _until_unlocked(attempt)


def commit_when_unlocked(session, write: Callable[[], T]) -> T:
    """``write()`` and a commit, in ``session``; on SQLite the writer lock is waited for
    cooperatively, as :func:`write_when_unlocked` does for a connection of its own.

    For a request that reads first and writes last in the session it already uses: on SQLite
    its reads hold no lock (the driver begins a transaction only at the first write), so the
    lock is held from the first write to the commit and nothing else. ``write`` may run several
    times (each try is rolled back): it must read again what it depends on.
    """
    if session.get_bind().dialect.name != "sqlite":
        result = write()
        session.commit()
        return result

    def attempt() -> T:
        try:
            with _no_busy_wait(session.connection()):
                return write()
        except OperationalError:
            session.rollback()
            raise

    result = _until_unlocked(attempt)
    session.commit()
    return result


def _until_unlocked(attempt: Callable[[], T]) -> T:
    """``attempt()``, tried again after a short pause (doubling) while it finds SQLite's writer
    lock taken, for up to :data:`LOCK_WAIT_S`; a cooperative sleep under gevent."""
    deadline = time.monotonic() + LOCK_WAIT_S
    pause = FIRST_RETRY_S
    while True:
        try:
            return attempt()
        except OperationalError as error:
            if not _locked(error) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, LAST_RETRY_S)


@contextmanager
def _no_busy_wait(connection):
    """The connection's writes fail at once on a taken lock (instead of waiting inside the
    sqlite3 library, which holds the whole process) until the block ends. Set on the driver's
    connection: through SQLAlchemy the pragma would open a transaction."""
    sqlite = connection.connection.driver_connection
    sqlite.execute("PRAGMA busy_timeout=0")
    try:
        yield
    finally:
        sqlite.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


#: A write that changes nothing but takes SQLite's writer lock at once (as ``BEGIN IMMEDIATE``
#: would; SQLAlchemy's SQLite driver begins transactions lazily).
_EVENTS = Event.__table__
_TAKE_WRITER_LOCK = update(_EVENTS).where(_EVENTS.c.id == -1).values(pending=_EVENTS.c.pending)


def take_writer_lock(session) -> None:
    """On SQLite, hold the one writer lock from now to the commit, so that what the transaction
    reads next cannot change before it writes (PostgreSQL locks rows instead: nothing to do)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(_TAKE_WRITER_LOCK)


def _locked(error: OperationalError) -> bool:
    return "database is locked" in str(error.orig) or "database is busy" in str(error.orig)
