"""Group commit: requests that write at the same moment share one transaction.

Under load each web worker holds many requests at once (gevent greenlets, or threads), and the
events endpoint's work is one small insert and a commit: the round trips, the transaction and
the commit (PostgreSQL flushes its log; SQLite takes its one writer lock) cost more than the
rows. So the first request to arrive writes (it becomes the *leader*); requests that arrive while
it writes wait, and the next leader writes all of theirs in one transaction. Nobody waits on a
timer: alone, a request writes at once; under load, groups grow by themselves to what arrived
during one write. Every request still answers only after the transaction holding its rows has
committed, so an acknowledgement stays a promise that the rows are stored.

A failure fails the whole group: each waiting request gets the error (and answers it as it
would have alone, a 503 for a database that is down). When a group of several fails on a row
(an integrity error), each request is written alone, so one request's bad row cannot fail the
others.
"""

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy.exc import IntegrityError

Work = TypeVar("Work")
Result = TypeVar("Result")


class _Ticket(Generic[Work, Result]):
    __slots__ = ("work", "done", "result", "error")

    def __init__(self, work: Work):
        self.work = work
        self.done = False
        self.result: Result | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[Work, Result]):
    """Runs ``write(works) -> results`` (one result per work, in order, one transaction) for
    the works submitted together."""

    def __init__(self, write: Callable[[list[Work]], list[Result]]):
        self._write = write
        self._changed = threading.Condition()
        self._waiting: list[_Ticket] = []
        self._writing = False
        #: How many groups were written and how many works they held (for tests and tuning).
        self.groups = 0
        self.works = 0

    def submit(self, work: Work) -> Result:
        """Write ``work`` with whatever else is waiting; return its result once committed."""
        ticket: _Ticket = _Ticket(work)
        with self._changed:
            self._waiting.append(ticket)
        _let_others_arrive()
        with self._changed:
            while not ticket.done:
                if not self._writing:
                    self._writing = True
                    group, self._waiting = self._waiting, []
                    break
                self._changed.wait()
            else:
                return _outcome(ticket)
        try:
            self._write_group(group)
        finally:
            with self._changed:
                # Interrupted before the group was written (its greenlet killed): whoever is
                # left waits for the next leader.
                self._waiting[:0] = [t for t in group if not t.done and t is not ticket]
                self._writing = False
                self._changed.notify_all()
        return _outcome(ticket)

    def _write_group(self, group: list[_Ticket]) -> None:
        self.groups += 1
        self.works += len(group)
        try:
            results = self._write([t.work for t in group])
        except IntegrityError as error:
            if len(group) == 1:
                _fail(group, error)
                return
            for ticket in group:  # find the one at fault: each alone
                self._write_group([ticket])
            return
        except Exception as error:  # handed to every request of the group
            _fail(group, error)
            return
        for ticket, result in zip(group, results, strict=True):
            ticket.result = result
            ticket.done = True


def _let_others_arrive() -> None:
    """Under gevent, once this work is queued, let the greenlets that are ready queue theirs
    before a leader takes the group: without it the first request of a burst writes alone, as
    it runs before the others have read their requests (the gevent form of PostgreSQL's
    ``commit_delay``, with no timer). Threads need none: they run side by side."""
    if _gevent_sleep is not None:
        _gevent_sleep(0)


def _gevent_patched():
    """gevent's ``sleep`` when this process is monkey-patched (the gunicorn gevent workers
    patch before the app is imported), else None."""
    try:
        from gevent import monkey, sleep
    except ImportError:
        return None
    return sleep if monkey.is_module_patched("threading") else None


_gevent_sleep = _gevent_patched()


def _outcome(ticket: _Ticket):
    if ticket.error is not None:
        raise ticket.error
    return ticket.result


def _fail(group: list[_Ticket], error: Exception) -> None:
    for ticket in group:
        ticket.error = error
        ticket.done = True
