"""Decide's shell: the visitor's state from the store (the database only on a miss), the pure
core's answer (:func:`.offers.offers_for`), and the few writes it asks for.

A returning visitor whose state is in the store costs no statement: nothing is read, nothing is
written, nothing committed. A miss loads the state (creating the visitor on first sight); new
assignments are inserted in one statement, idempotent on (campaign, visitor), so the first
decide's variant stays the visitor's on every worker (sticky) even after weight changes.
"""

import time
from dataclasses import dataclass, field, replace

from flask import current_app
from sqlalchemy import bindparam, update

from ...extensions import db
from ...models import Assignment
from ...models.types import utcnow
from ..platform.upsert import insert_ignoring_conflicts
from ..visitors.records import LAST_SEEN_RESOLUTION
from ..visitors.state import AssignmentState, VisitorState, load_state
from ..visitors.state_store import ChangedVisitorsFeed, app_store
from .offers import Offer, offers_for, page_context
from .site_config import SiteConfig
from .strata import stratum_of

__all__ = ["DecideResult", "Offer", "decide"]

_FEED_KEY = "funnelcake.changed_visitors"


@dataclass
class DecideResult:
    visitor_key: str
    offers: list[Offer]
    #: ``[(campaign_id, reason)]`` for campaigns not offered, for the snippet's debug mode.
    skipped: list[tuple[int, str]]
    #: Closed popups to draw as a tab only (``frequency.teaser``), at most one.
    teasers: list[Offer] = field(default_factory=list)


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
    offers = decision.offers
    written = list(decision.offered_itself)
    if decision.new_assignments:
        # What is known before any popup, kept with the assignment for the results' strata.
        stratum = stratum_of(page_context(site, state, request, now), request.get("referrer"))
        stored, offers = _store_assignments(site, state, decision.new_assignments, offers, stratum)
        written += stored
    if decision.offered_itself:
        ids = [a.id for a in decision.offered_itself]
        db.session.connection().execute(_OFFERED_ITSELF, {"ids": ids})
    if decision.rerandomized:
        _store_rerandomized(decision.rerandomized)
        written += decision.rerandomized
    if loaded or written:
        db.session.commit()
        if store is not None:
            store.put(site.id, visitor_key, state.with_assignments(written), token)
    return DecideResult(visitor_key, offers, decision.skipped, decision.teasers)


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
            feed.read(store, config["VISITOR_STATE_TTL_S"])
    return store


#: A reward wheel decide now offers by its own targeting: it may be spun without the survey.
_OFFERED_ITSELF = (
    update(Assignment.__table__)
    .where(Assignment.__table__.c.id.in_(bindparam("ids", expanding=True)))
    .values(reward_only=False)
)
_NEW_ASSIGNMENT_COLUMNS = (
    "campaign_id",
    "variant_id",
    "holdout",
    "sampled_out",
    "reward_only",
    "impressions",
    "phase",
)
_ROWS = Assignment.__table__
#: An assignment re-randomised in a new phase: its new variant, counted as not yet exposed in
#: the new phase (its frequency counters stay). Only a row still of an earlier phase changes, so
#: two workers re-randomising the same visitor write it once (both draw the same variant).
_RERANDOMIZE = (
    update(_ROWS)
    .where(_ROWS.c.id == bindparam("row_id"), _ROWS.c.phase < bindparam("new_phase"))
    .values(
        variant_id=bindparam("new_variant_id"),
        holdout=bindparam("new_holdout"),
        phase=bindparam("new_phase"),
        first_impression_at=None,
    )
)


def _store_rerandomized(assignments: list[AssignmentState]) -> None:
    """Write the re-randomised assignments over the stored ones (one executemany)."""
    db.session.connection().execute(
        _RERANDOMIZE,
        [
            {
                "row_id": a.id,
                "new_phase": a.phase,
                "new_variant_id": a.variant_id,
                "new_holdout": a.holdout,
            }
            for a in assignments
        ],
    )


def _store_assignments(
    site: SiteConfig,
    state: VisitorState,
    made: list[AssignmentState],
    offers: list[Offer],
    stratum: str,
) -> tuple[list[AssignmentState], list[Offer]]:
    """Insert the new assignments in one statement; when a concurrent first decide of the same
    visitor stored some first, its variants win (read back) and the offers follow them."""
    now = utcnow()
    rows = [
        {
            **{name: getattr(a, name) for name in _NEW_ASSIGNMENT_COLUMNS},
            "visitor_id": state.visitor_id,
            "assigned_at": now,
            "stratum": stratum,
        }
        for a in made
    ]
    inserted = insert_ignoring_conflicts(
        Assignment,
        rows,
        ["campaign_id", "visitor_id"],
        returning=[Assignment.campaign_id, Assignment.id],
    )
    ids = dict(inserted)
    if len(ids) == len(made):
        return [replace(a, id=ids[a.campaign_id]) for a in made], offers
    stored = load_state(site.id, state.visitor_key).assignments
    return [stored[a.campaign_id] for a in made if a.campaign_id in stored], _keep_stored_variants(
        site, stored, offers
    )


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
            kept.append(
                replace(offer, variant_id=variant.id, content=variant.public_content, encoded=None)
            )
    return kept
