"""Repeat work that is safe to repeat when its pooled connection turned out to be dead.

The pool tries only connections that sat idle (:func:`widget_server.extensions._ping_if_idle`);
one that died while busy (a database restart, a failover) fails the statement sent on it, and
SQLAlchemy then drops it and every connection opened before it. Work that changes nothing when
done twice (an insert that skips what is already stored) can simply run again on a new one.
"""

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from ...extensions import db

T = TypeVar("T")


def once_more_if_disconnected(work: Callable[[], T]) -> T:
    """``work()``, run a second time if the first failed on a lost connection (the session's
    failed transaction is rolled back first, so ``work`` may use the session)."""
    try:
        return work()
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
    db.session.rollback()
    return work()
