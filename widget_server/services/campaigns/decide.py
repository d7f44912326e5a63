"""Decide's shell: the visitor's state from the store (the database only on a miss), the pure
core's answer (:func:`.offers.offers_for`), and the few writes it asks for.

A returning visitor whose state is in the store costs no statement: nothing is read, nothing is
written, nothing committed. A miss reads the state. A visitor met for the first time and new
assignments go through the events write path (:func:`..visitors.decided.record_decided`: shared
with concurrent requests, one insert and one commit), idempotent on (site, visitor, campaign),
so the first decide's variant stays the visitor's on every worker (sticky), even after weight
changes; the applier then stores the visitor and the assignment rows.
"""

import time
from dataclasses import dataclass, replace

from flask import current_app
from sqlalchemy import bindparam, update

from ...extensions import db
from ...models import Assignment
from ...models.types import utcnow
from ..visitors.decided import record_decided
from ..visitors.records import LAST_SEEN_RESOLUTION
from ..visitors.state import AssignmentState, VisitorState, load_state
from ..visitors.state_store import ChangedVisitorsFeed, app_store
from .offers import Offer, offers_for
from .site_config import SiteConfig

__all__ = ["DecideResult", "Offer", "decide"]

_FEED_KEY = "funnelcake.changed_visitors"


@dataclass
class DecideResult:
    visitor_key: str
    offers: list[Offer]
    #: ``[(campaign_id, reason)]`` for campaigns not offered, for the snippet's debug mode.
    skipped: list[tuple[int, str]]


def decide(site: SiteConfig, request: dict) -> DecideResult:
    """The campaigns this visitor may see on this page, each with its sticky variant."""
    now = utcnow()
    visitor_key = request["visitor_id"]
    store = _store_in_use()
    state, token = (None, 0) if store is None else store.get(site.id, visitor_key)
    if state is not None and now - state.last_seen_at > LAST_SEEN_RESOLUTION:
        state = None  # reload, which refreshes last_seen_at (at most one write in 5 minutes)
    loaded = state is None
    if loaded:
        state = load_state(site.id, visitor_key)
    decision = offers_for(site, state, request, now)
    if not loaded and any(a.id is None for a in decision.offered_itself):
        # A kept reward-only assignment made moments ago: its row may be stored by now.
        state, loaded = load_state(site.id, visitor_key), True
        decision = offers_for(site, state, request, now)
    offers = decision.offers
    # A wheel's reward-only assignment still pending (no id yet) stays reward-only until the
    # applier stored it: the spin then asks for the survey first (the safe side).
    offered_itself = [a for a in decision.offered_itself if a.id is not None]
    if offered_itself:
        ids = [a.id for a in offered_itself]
        db.session.connection().execute(_OFFERED_ITSELF, {"ids": ids})
    if loaded or offered_itself:
        db.session.commit()
    written = list(offered_itself)
    if decision.new_assignments or (loaded and state.visitor_id is None):
        stored, offers = _record_assignments(site, state, decision.new_assignments, offers)
        written += stored
    if store is not None and (loaded or written) and state.visitor_id is not None:
        # A visitor not stored yet is not kept: a change by id could not reach their state.
        store.put(site.id, visitor_key, state.with_assignments(written), token)
    return DecideResult(visitor_key, offers, decision.skipped)


def _store_in_use():
    """The app's visitor-state store, or None when ``VISITOR_STATE_TTL_S`` is 0; with a
    per-worker store, other processes' events are brought in first when a check is due."""
    config = current_app.config
    if config["VISITOR_STATE_TTL_S"] <= 0:
        return None
    store = app_store()
    if not store.shared:
        feed = current_app.extensions.get(_FEED_KEY)
        if feed is None:
            feed = current_app.extensions.setdefault(_FEED_KEY, ChangedVisitorsFeed())
        if feed.due(time.monotonic(), config["CONFIG_CHECK_S"]):
            feed.read(store)
    return store


#: A reward wheel decide now offers by its own targeting: it may be spun without the survey.
_OFFERED_ITSELF = (
    update(Assignment.__table__)
    .where(Assignment.__table__.c.id.in_(bindparam("ids", expanding=True)))
    .values(reward_only=False)
)


def _record_assignments(
    site: SiteConfig, state: VisitorState, made: list[AssignmentState], offers: list[Offer]
) -> tuple[list[AssignmentState], list[Offer]]:
    """Store the first visit and the new assignments; when a concurrent first decide of the
    same visitor stored some first, its variants win (read back) and the offers follow them."""
    first_visit = state.visitor_id is None and not state.assignments
    new = record_decided(site.id, state.visitor_key, made, first_visit)
    if not made or new == len(made) + first_visit:
        return made, offers
    stored = load_state(site.id, state.visitor_key).assignments
    db.session.commit()
    kept = [stored[a.campaign_id] for a in made if a.campaign_id in stored]
    return kept, _keep_stored_variants(site, stored, offers)


def _keep_stored_variants(
    site: SiteConfig, stored: dict[int, AssignmentState], offers: list[Offer]
) -> list[Offer]:
    """After a concurrent first decide won the insert, answer with the variant it stored."""
    by_id = {c.id: c for c in site.campaigns}
    kept = []
    for offer in offers:
        assignment = stored.get(offer.campaign_id)
        campaign = by_id[offer.campaign_id]
        if (
            assignment is None
            or campaign.promoted_variant_id
            or (assignment.variant_id == offer.variant_id)
        ):
            kept.append(offer)
            continue
        variant = campaign.variant(assignment.variant_id)
        if variant is not None and not assignment.holdout and not assignment.sampled_out:
            kept.append(replace(offer, variant_id=variant.id, content=variant.public_content))
    return kept
