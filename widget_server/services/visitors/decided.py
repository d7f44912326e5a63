"""What decide made, stored through the events write path: a visitor's first visit and their
new assignments.

Decide stores no visitor or assignment row itself: it hands ``visit`` and ``assign`` rows to the
events write path (:mod:`..platform.event_store`: one shared insert and commit), and the
applier creates the visitor and the assignment rows. Meanwhile decide reads them back as
pending (:func:`.state.load_state`).
"""

import hashlib

from ...models.types import utcnow
from ..platform import event_store
from .state import AssignmentState, assign_event_data


def record_decided(
    site_id: int, visitor_key: str, assignments: list[AssignmentState], first_visit: bool
) -> int:
    """Store the first visit (when decide found no visitor) and the new assignments; how many
    were new: fewer than sent when a concurrent decide of the same visitor stored its own first.

    The ids derive from the visitor and the campaign, so each is stored once, by the first
    decide (theirs wins); the answer goes out after the commit, so an answered variant is
    durable.
    """
    now = utcnow()
    rows = []
    if first_visit:
        rows.append(_row(site_id, visitor_key, "visit", None, None, {}, now))
    for a in assignments:
        data = assign_event_data(a)
        rows.append(_row(site_id, visitor_key, "assign", a.campaign_id, a.variant_id, data, now))
    return event_store.store(rows) if rows else 0


def _row(site_id, visitor_key, kind, campaign_id, variant_id, data, now) -> dict:
    # Derived from who and what, so that the first decide's row wins; 7 + 40 < 64 characters.
    digest = hashlib.sha1(f"{visitor_key}\0{campaign_id}".encode()).hexdigest()
    return {
        "site_id": site_id,
        "event_uuid": f"{kind}-{digest}",
        "type": kind,
        "visitor_key": visitor_key,
        "campaign_id": campaign_id,
        "variant_id": variant_id,
        "pending": True,
        "occurred_at": now,
        "received_at": now,
        "data": data,
    }
