"""Announcements that something others cache changed: a site's setup, visitors.

An area that changes what others cache (the funnel's stages, which decide's site config and the
funnel figures both hold; a visitor's facts, which decide's visitor states hold) sends a signal
instead of reaching up into those caches; each cache subscribes to it where it is defined.
Receivers run in the sender's app context.

Visitors are announced when the transaction that changed them commits, never before (a decide
reading the old rows in between would keep them): the ORM's changes to visitors and assignments
by a session hook, bulk writes by :func:`note_changed_visitors`.
"""

from blinker import Namespace
from flask import has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from ...extensions import db
from ...models import Assignment, Visitor

_signals = Namespace()

#: Sent with ``site_id`` and ``site_key`` after a site's change is committed.
site_changed = _signals.signal("site-changed")


def announce_site_change(site_id: int, site_key: str) -> None:
    """Tell every cache of this app that the site changed (after the change is committed)."""
    site_changed.send(site_id=site_id, site_key=site_key)


#: Sent with ``visitor_ids`` after changes to these visitors' rows or assignments committed.
visitors_changed = _signals.signal("visitors-changed")

_CHANGED = "funnelcake.changed_visitor_ids"


def note_changed_visitors(visitor_ids) -> None:
    """Announce these visitors once the session's transaction commits (a bulk write the ORM's
    flush does not see)."""
    db.session.info.setdefault(_CHANGED, set()).update(visitor_ids)


@event.listens_for(Session, "after_flush")
def _note_flushed_visitors(session, flush_context) -> None:
    """Remember the visitors whose row or assignments this transaction changes."""
    changed = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Visitor):
            changed.add(obj.id)
        elif isinstance(obj, Assignment):
            changed.add(obj.visitor_id)
    changed.discard(None)
    if changed:
        session.info.setdefault(_CHANGED, set()).update(changed)


@event.listens_for(Session, "after_commit")
def _announce_changed_visitors(session) -> None:
    changed = session.info.pop(_CHANGED, None)
    if changed and has_app_context():
        visitors_changed.send(visitor_ids=sorted(changed))


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session) -> None:
    session.info.pop(_CHANGED, None)
