"""Phases of an experiment: an edit that changes a test half-way starts a new phase, and the
statistics read one phase only (docs/promotion.md, "Phases").

An edit of a running (or paused) campaign's targeting or trigger, or of one of its variants'
content or weight, by an admin, starts the next phase; the caller must say what happens to the
assignments (:data:`~widget_server.vocabulary.PHASE_ASSIGNMENTS`), or the edit is refused
before anything changes. The evaluator's and the promotion's own weight changes never start one.
"""

from datetime import datetime

from sqlalchemy import select, update

from ...errors import Conflict, ValidationFailed
from ...extensions import db
from ...models import EXPOSURE, Assignment, Campaign, MetricConversion, VariantMetric
from ...models.types import utcnow
from ...vocabulary import PHASE_STATUSES


def phase_changes(campaign: Campaign, changes: dict, fields: tuple[str, ...], target) -> list:
    """The ``fields`` of ``changes`` that differ from ``target``'s values and would start a new
    phase of ``campaign``: none unless its test is in progress and has exposed a visitor in its
    current phase (before that there are no figures to keep apart)."""
    if campaign.status not in PHASE_STATUSES:
        return []
    changed = [
        name for name in fields if name in changes and changes[name] != getattr(target, name)
    ]
    if changed and not _has_exposures(campaign):
        return []
    return changed


def variant_added(campaign: Campaign, name: str) -> list[str]:
    """What adding the variant ``name`` changes of ``campaign`` that starts a new phase: the
    traffic split (a new arm takes its share) when its test is in progress and has exposed a
    visitor in its current phase; nothing otherwise."""
    if campaign.status not in PHASE_STATUSES or not _has_exposures(campaign):
        return []
    return [f"the variants (adding {name!r})"]


def _has_exposures(campaign: Campaign) -> bool:
    exposure = (
        select(VariantMetric.campaign_id)
        .where(
            VariantMetric.campaign_id == campaign.id,
            VariantMetric.phase == campaign.phase,
            VariantMetric.metric == EXPOSURE,
            VariantMetric.visitors > 0,
        )
        .limit(1)
    )
    return db.session.scalar(exposure) is not None


def check_choice(campaign: Campaign, changed: list[str], choice: dict | None) -> None:
    """Refuse an edit that would start a phase without the choice of what happens to the
    assignments, saying what would happen.

    :raise Conflict: naming ``phase``; nothing is changed.
    """
    if changed and not choice:
        raise Conflict(
            f"Changing {' and '.join(changed)} of a campaign whose test is in progress starts "
            f"phase {campaign.phase + 1}: its results start afresh (phase {campaign.phase} stays "
            "readable). Send phase.assignments: sticky (visitors keep their variant; only "
            "visitors first exposed from now on count) or rerandomize (every visitor is "
            "assigned afresh).",
            {"phase": ["Choose sticky or rerandomize assignments for the new phase."]},
        )


def start_phase(campaign: Campaign, changed: list[str], assignments: str) -> None:
    """Start the campaign's next phase, in the caller's transaction.

    With ``sticky`` assignments, visitors assigned but not yet exposed are moved into the new
    phase (with any conversion kept for their first impression), so that a visitor counts in the
    phase they are first exposed in; visitors already exposed keep their variant and their phase.
    With ``rerandomize`` nothing moves here: decide assigns each visitor afresh at their next
    visit (:func:`rerandomized_since`).
    """
    new = campaign.phase + 1
    now = utcnow()
    if assignments == "sticky":
        unexposed = select(Assignment.visitor_id).where(
            Assignment.campaign_id == campaign.id,
            Assignment.first_impression_at.is_(None),
            Assignment.phase < new,
        )
        db.session.execute(
            update(MetricConversion)
            .where(
                MetricConversion.campaign_id == campaign.id,
                MetricConversion.phase == campaign.phase,
                MetricConversion.visitor_id.in_(unexposed),
            )
            .values(phase=new)
            .execution_options(synchronize_session=False)
        )
        db.session.execute(
            update(Assignment)
            .where(
                Assignment.campaign_id == campaign.id,
                Assignment.first_impression_at.is_(None),
                Assignment.phase < new,
            )
            .values(phase=new)
            .execution_options(synchronize_session=False)
        )
    campaign.phase_history = [
        *(campaign.phase_history or []),
        {
            "number": new,
            "started_at": now.isoformat(),
            "changed": list(changed),
            "assignments": assignments,
        },
    ]
    campaign.phase = new
    campaign.phase_started_at = now


def phases_of(campaign: Campaign) -> list[dict]:
    """The campaign's phases, the first one included, oldest first."""
    started = campaign.started_at.isoformat() if campaign.started_at else None
    first = {"number": 1, "started_at": started, "changed": [], "assignments": None}
    return [first, *(campaign.phase_history or [])]


def phase_span(campaign: Campaign, phase: int) -> tuple[datetime | None, datetime | None]:
    """When ``phase`` started and ended (None: still current): ``min_running_days`` and
    ``max_duration_days`` count from its start."""
    found = phases_of(campaign)
    if phase == campaign.phase:
        return campaign.phase_started_at or campaign.started_at, None
    started = _moment(found[phase - 1]["started_at"]) if phase > 1 else campaign.started_at
    ended = _moment(found[phase]["started_at"]) if phase < len(found) else None
    return started, ended


def phase_ends(campaign_phase: int, phase_started_at, history: list[dict] | None) -> dict:
    """``{phase: when it ended}`` of a campaign's earlier phases (from its ``phase``,
    ``phase_started_at`` and ``phase_history``): a visitor of an ended phase no longer counts in
    it for what they do after its end, so its figures stay as they were."""
    ends = {p["number"] - 1: _moment(p["started_at"]) for p in history or ()}
    if campaign_phase > 1 and phase_started_at is not None:
        ends[campaign_phase - 1] = phase_started_at
    return ends


def ended_phases(campaign_ids) -> dict[tuple[int, int], datetime]:
    """``{(campaign id, phase): ended at}`` of these campaigns' ended phases (one read)."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return {}
    rows = db.session.execute(
        select(
            Campaign.id, Campaign.phase, Campaign.phase_started_at, Campaign.phase_history
        ).where(Campaign.id.in_(ids), Campaign.phase > 1)
    ).all()
    return {
        (campaign_id, phase): ended
        for campaign_id, current, started, history in rows
        for phase, ended in phase_ends(current, started, history).items()
    }


def _moment(stored: str | None) -> datetime | None:
    return datetime.fromisoformat(stored) if stored else None


def rerandomized_since(history: list[dict] | None, phase: int) -> int | None:
    """The latest phase after ``phase`` that re-randomised the assignments, or None: an
    assignment made in ``phase`` is then assigned afresh, with a seed of that phase."""
    found = [
        p["number"]
        for p in history or ()
        if p["number"] > phase and p.get("assignments") == "rerandomize"
    ]
    return max(found) if found else None


def chosen_phase(campaign: Campaign, requested) -> int:
    """The phase a results request asks for (the current one by default).

    :raise ValidationFailed: naming ``phase``, when it is not one of the campaign's phases.
    """
    if requested in (None, ""):
        return campaign.phase
    try:
        number = int(requested)
    except (TypeError, ValueError):
        number = 0
    if not 1 <= number <= campaign.phase:
        raise ValidationFailed(
            f"phase must be a phase of this campaign, 1 to {campaign.phase}.",
            {"phase": [f"Not between 1 and {campaign.phase}."]},
        )
    return number
