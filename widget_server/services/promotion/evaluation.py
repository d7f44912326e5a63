"""The evaluator: one round of automatic promotion over every running campaign.

A round runs under one database lock for the whole installation, so any number of processes or
hosts may call it at the same moment (``funnelcake evaluate`` from cron, the server's background
thread in each gunicorn worker): one takes the lock and decides, the others skip the round. On
PostgreSQL the lock is ``pg_try_advisory_xact_lock`` (released when the round's transaction
ends, also if the process dies); on SQLite it is a lease row in ``evaluator_locks``. Inside the
lock each campaign is re-read with a row lock and re-checked before it is changed, so a manual
promotion racing with the round cannot produce a second decision either.

Promotions, stops and bandit weights are written in the round's transaction; their
``decision.made`` webhooks are recorded there (``services.platform.webhooks``) and sent after the
commit, outside the lock. A winner held back by a harmed guardrail metric is logged as a ``hold``
Decision when the hold begins (nothing else changes; the next rounds judge it again).
"""

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, text, update
from sqlalchemy.orm import load_only, selectinload

from ...errors import Conflict, ValidationFailed
from ...extensions import db
from ...models import Campaign, Decision, EvaluatorLock, Variant
from ...models.types import utcnow
from ...vocabulary import DECISION_MADE
from ..campaigns import phases, site_config
from ..platform import webhooks
from ..platform.upsert import insert_ignoring_conflicts
from . import metrics, results

log = logging.getLogger(__name__)

#: The advisory lock key of the evaluator (any constant shared by every process).
ADVISORY_LOCK_KEY = 0x46554E4E454C  # "FUNNEL"
LOCK_NAME = "evaluate"
#: A SQLite lease outlives a crashed holder by this long at most.
LEASE_S = 300


@dataclass
class RoundReport:
    """What one round did (``acquired`` False: another evaluator held the lock)."""

    acquired: bool
    evaluated: int = 0
    promoted: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)
    reweighted: list[int] = field(default_factory=list)
    webhooks_sent: int = 0
    duration_s: float = 0.0

    def as_json(self) -> dict:
        return {
            "acquired": self.acquired,
            "evaluated": self.evaluated,
            "promoted": self.promoted,
            "held": self.held,
            "stopped": self.stopped,
            "reweighted": self.reweighted,
            "webhooks_sent": self.webhooks_sent,
            "duration_s": round(self.duration_s, 4),
        }


def run_round(now: datetime | None = None) -> RoundReport:
    """Evaluate every running campaign once, under the installation-wide lock."""
    started = time.perf_counter()
    now = now or utcnow()
    dialect = db.session.get_bind().dialect.name
    holder = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    if dialect == "postgresql":
        db.session.rollback()
        acquired = db.session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
        )
    else:
        acquired = _take_lease(holder, now)
    if not acquired:
        db.session.rollback()
        return RoundReport(acquired=False, duration_s=time.perf_counter() - started)
    try:
        report = _evaluate_all(now)
        db.session.commit()  # also releases the advisory lock
    except BaseException:
        db.session.rollback()
        raise
    finally:
        if dialect != "postgresql":
            _release_lease(holder)
    if report.promoted or report.stopped or report.reweighted:
        site_config.invalidate()
    report.webhooks_sent = _deliver_webhooks()
    report.duration_s = time.perf_counter() - started
    return report


def _take_lease(holder: str, now: datetime) -> bool:
    insert_ignoring_conflicts(EvaluatorLock, [{"name": LOCK_NAME}], ["name"])
    taken = db.session.execute(
        update(EvaluatorLock)
        .where(
            EvaluatorLock.name == LOCK_NAME,
            (EvaluatorLock.locked_until.is_(None)) | (EvaluatorLock.locked_until < now),
        )
        .values(holder=holder, locked_until=now + timedelta(seconds=LEASE_S))
    ).rowcount
    db.session.commit()
    return taken == 1


def _release_lease(holder: str) -> None:
    db.session.execute(
        update(EvaluatorLock)
        .where(EvaluatorLock.name == LOCK_NAME, EvaluatorLock.holder == holder)
        .values(holder=None, locked_until=None)
    )
    db.session.commit()


def _evaluate_all(now: datetime) -> RoundReport:
    report = RoundReport(acquired=True)
    # Only the columns a round reads: variant contents (surveys, wheels) and the rules are the
    # bulk of these rows and a round never needs them.
    campaigns = db.session.scalars(
        select(Campaign)
        .where(Campaign.status == "running")
        .options(
            load_only(
                Campaign.id,
                Campaign.site_id,
                Campaign.name,
                Campaign.kind,
                Campaign.status,
                Campaign.ab,
                Campaign.started_at,
                Campaign.phase,
                Campaign.phase_started_at,
                Campaign.phase_history,
                Campaign.promoted_variant_id,
            ),
            selectinload(Campaign.variants).load_only(
                Variant.id, Variant.campaign_id, Variant.name, Variant.is_control, Variant.weight
            ),
        )
        .order_by(Campaign.id)
    ).all()
    # Each campaign's current phase only: figures from before an edit are never mixed in.
    current = {c.id: c.phase for c in campaigns}
    figures = metrics.figures((c.id for c in campaigns), current)
    reporting = results.sites_reporting_orders(c.site_id for c in campaigns)
    judged = {m for c in campaigns for m in results.judged_metrics(c, c.site_id in reporting)}
    strata = metrics.stratum_figures((c.id for c in campaigns), judged, current)
    for campaign in campaigns:
        if campaign.promoted_variant_id is not None or len(campaign.variants) < 2:
            continue
        report.evaluated += 1
        outcome = _judge(
            campaign, figures[campaign.id], now, strata[campaign.id], campaign.site_id in reporting
        )
        if outcome is None:
            continue
        if outcome.bandit_weights and _set_weights(campaign, outcome.bandit_weights):
            report.reweighted.append(campaign.id)
        auto = (campaign.ab or {}).get("auto_promote", True)
        if outcome.action == "hold" and auto and _hold(campaign, outcome):
            report.held.append(campaign.id)
        if outcome.action in ("continue", "hold") or not auto:
            continue
        if outcome.action == "promote":
            if _promote(campaign, outcome.winner_variant_id, outcome.reason, outcome.snapshot,
                        automatic=True):  # fmt: skip
                report.promoted.append(campaign.id)
        elif outcome.action == "stop":
            if _stop(campaign, outcome.reason, outcome.snapshot, now):
                report.stopped.append(campaign.id)
    return report


def _judge(campaign: Campaign, figures, now: datetime, strata=None,
           reports_orders: bool = False) -> results.Outcome | None:  # fmt: skip
    """The policy's outcome, or None while the figures cannot be judged (a variant without
    visitors yet: the normal state of a new campaign).

    A test that cannot be judged still ends at its maximum duration, keeping the control, so a
    campaign nobody sees does not run for ever.
    """
    if not results.variants_without_visitors(campaign, figures):
        try:
            return results.evaluate(
                campaign, figures, now, True, strata_by_metric=strata, reports_orders=reports_orders
            )
        except ValueError:  # figures ab/ refuses for another reason: log it, try next round
            log.warning("campaign %s not evaluated", campaign.id, exc_info=True)
    settings = results.settings_of(campaign)
    started = phases.phase_span(campaign, campaign.phase)[0] or now
    running_days = (now - started).total_seconds() / 86400.0
    if running_days < float(settings["max_duration_days"]):
        return None
    reason = (
        f"Stopped at the maximum duration of {float(settings['max_duration_days']):g} days "
        "without enough data to judge; the control stays."
    )
    snapshot = results.campaign_results(campaign)
    snapshot["decision"] = {"action": "stop", "winner_variant_id": None, "reason": reason}
    return results.Outcome("stop", None, reason, snapshot, None)


def _claim(campaign_id: int, **values) -> bool:
    """Write the campaign's decision only if it is still running and undecided.

    One conditional UPDATE (compare-and-set): of two writers racing for the same campaign (a
    round and an admin, two admins, or two rounds on SQLite where ``FOR UPDATE`` does not exist)
    exactly one changes the row; the other sees 0 rows and records nothing.
    """
    db.session.flush()
    changed = db.session.execute(
        update(Campaign)
        .where(
            Campaign.id == campaign_id,
            Campaign.status.in_(("running", "paused")),
            Campaign.promoted_variant_id.is_(None),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    return changed == 1


def _hold(campaign: Campaign, outcome: results.Outcome) -> Decision | None:
    """Log that a guardrail holds the campaign's winner back, once per hold: not again while
    the campaign's latest Decision is already a hold of the same variant."""
    held_id = outcome.snapshot["decision"].get("held_variant_id")
    latest = db.session.execute(
        select(Decision.action, Decision.winner_variant_id)
        .where(Decision.campaign_id == campaign.id)
        .order_by(Decision.id.desc())
        .limit(1)
    ).first()
    if latest is not None and tuple(latest) == ("hold", held_id):
        return None
    decision = Decision(
        campaign_id=campaign.id,
        phase=campaign.phase,
        action="hold",
        winner_variant_id=held_id,
        automatic=True,
        reason=outcome.reason[:1000],
        previous_weights={str(v.id): v.weight for v in campaign.variants},
        snapshot=outcome.snapshot,
    )
    db.session.add(decision)
    _queue_webhook(campaign, decision)  # ``decision.made`` with action ``hold``
    return decision


def _set_weights(campaign: Campaign, weights: dict[int, float]) -> bool:
    """The bandit's next weights; the engine's own change, so it starts no phase."""
    changed = False
    for variant in campaign.variants:
        new = weights.get(variant.id)
        if new is not None and abs(variant.weight - new) > 1e-9:
            variant.weight = float(new)
            changed = True
    return changed


def _promote(campaign, winner_id, reason, snapshot, automatic) -> Decision | None:
    """The winner takes all non-holdout traffic: decide serves it from the next request on.

    Returns None, changing nothing, when someone else decided the campaign first.
    """
    previous = {str(v.id): v.weight for v in campaign.variants}
    if not _claim(campaign.id, promoted_variant_id=winner_id):
        return None
    for variant in campaign.variants:
        variant.weight = 1.0 if variant.id == winner_id else 0.0
    campaign.promoted_variant_id = winner_id
    decision = Decision(
        campaign_id=campaign.id,
        phase=campaign.phase,
        action="promote",
        winner_variant_id=winner_id,
        automatic=automatic,
        reason=reason[:1000],
        previous_weights=previous,
        snapshot=snapshot,
    )
    db.session.add(decision)
    _queue_webhook(campaign, decision)
    return decision


def _stop(campaign, reason, snapshot, now) -> Decision | None:
    """The test ends without a winner: the campaign completes and the control stays.

    Returns None, changing nothing, when someone else decided the campaign first.
    """
    control = next((v for v in campaign.variants if v.is_control), campaign.variants[0])
    if not _claim(campaign.id, status="completed", ended_at=now):
        return None
    campaign.status = "completed"
    campaign.ended_at = now
    decision = Decision(
        campaign_id=campaign.id,
        phase=campaign.phase,
        action="stop",
        winner_variant_id=control.id,
        automatic=True,
        reason=reason[:1000],
        previous_weights={str(v.id): v.weight for v in campaign.variants},
        snapshot=snapshot,
    )
    db.session.add(decision)
    _queue_webhook(campaign, decision)
    return decision


def promote_by_hand(campaign: Campaign, variant_id: int) -> Decision:
    """An admin promotes a variant now, whatever the statistics say (they are kept).

    :raise ValidationFailed: the variant is not one of this campaign's.
    :raise Conflict: the campaign is not running or paused, or already has a promoted variant.
    """
    if variant_id not in {v.id for v in campaign.variants}:
        raise ValidationFailed(
            "Not a variant of this campaign.", {"variant_id": ["Not a variant of this campaign."]}
        )
    db.session.execute(select(Campaign.id).where(Campaign.id == campaign.id).with_for_update())
    db.session.refresh(campaign)
    if campaign.status not in ("running", "paused"):
        raise Conflict(f"Cannot promote in a campaign that is {campaign.status}.")
    if campaign.promoted_variant_id is not None:
        raise Conflict(
            f"Variant {campaign.promoted_variant_id} is already promoted; undo it first.",
            {"variant_id": ["A variant is already promoted."]},
        )
    try:
        snapshot = results.current_outcome(campaign, utcnow()).snapshot
    except ValueError as err:  # too little data to judge: an owner may still promote by hand
        snapshot = {"note": f"No statistics: {err}"}
    name = next(v.name for v in campaign.variants if v.id == variant_id)
    decision = _promote(
        campaign, variant_id, f"Promoted by hand: {name}.", snapshot, automatic=False
    )
    if decision is None:  # decided by a round or another admin since the check above
        db.session.rollback()
        raise Conflict(
            "This campaign was promoted or stopped a moment ago; reload it.",
            {"variant_id": ["A variant is already promoted."]},
        )
    db.session.commit()
    site_config.invalidate(campaign.site.site_key)
    # One delivery, briefly: an admin's request must not wait on a slow webhook receiver; what
    # is left (or fails) goes out with the next round or `funnelcake deliver-webhooks`.
    webhooks.deliver_pending(limit=1, timeout_s=MANUAL_WEBHOOK_TIMEOUT_S)
    return decision


def undo(campaign: Campaign) -> Decision:
    """Undo the campaign's latest promotion or stop: previous weights back, running again.

    :raise Conflict: there is nothing to undo.
    """
    db.session.execute(select(Campaign.id).where(Campaign.id == campaign.id).with_for_update())
    db.session.refresh(campaign)
    last = results.latest_standing_decision(campaign.id)
    if last is None:
        raise Conflict("This campaign has no promotion or stop to undo.")
    now = utcnow()
    undone = db.session.execute(
        update(Decision)
        .where(Decision.id == last.id, Decision.undone_at.is_(None))
        .values(undone_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if undone != 1:  # another admin undid it a moment ago (SQLite has no FOR UPDATE)
        db.session.rollback()
        raise Conflict("This decision was undone a moment ago; reload the campaign.")
    previous = last.previous_weights or {}
    for variant in campaign.variants:
        if str(variant.id) in previous:
            variant.weight = float(previous[str(variant.id)])
    campaign.promoted_variant_id = None
    if last.action == "stop":
        campaign.status = "running"
        campaign.ended_at = None
    last.undone_at = now
    decision = Decision(
        campaign_id=campaign.id,
        phase=campaign.phase,
        action="undo",
        winner_variant_id=last.winner_variant_id,
        automatic=False,
        reason=f"Undid the {last.action} of decision {last.id}.",
        previous_weights=previous,
        snapshot={"undone_decision_id": last.id},
    )
    db.session.add(decision)
    _queue_webhook(campaign, decision)
    db.session.commit()
    site_config.invalidate(campaign.site.site_key)
    return decision


def decisions_of(campaign: Campaign) -> list[Decision]:
    """The campaign's decision log, newest first."""
    return list(
        db.session.scalars(
            select(Decision).where(Decision.campaign_id == campaign.id).order_by(Decision.id.desc())
        )
    )


def decision_json(decision: Decision) -> dict:
    return {
        "id": decision.id,
        "campaign_id": decision.campaign_id,
        "action": decision.action,
        "winner_variant_id": decision.winner_variant_id,
        "automatic": decision.automatic,
        "reason": decision.reason,
        "previous_weights": decision.previous_weights,
        "snapshot": decision.snapshot,
        "created_at": decision.created_at.isoformat(),
        "undone_at": decision.undone_at.isoformat() if decision.undone_at else None,
    }


# -- webhooks -------------------------------------------------------------------------------


def _queue_webhook(campaign: Campaign, decision: Decision) -> None:
    """Record the ``decision.made`` webhook in the decision's transaction (sent after the
    commit): to the campaign's ``ab.webhook_url`` and to the site's webhook if it asks."""
    urls = webhooks.subscribed_urls(
        campaign.site.settings, DECISION_MADE, (campaign.ab or {}).get("webhook_url")
    )
    if not urls:
        return
    db.session.flush()  # the decision's id and time go in the payload
    data = {
        "site_id": campaign.site_id,
        "campaign_id": campaign.id,
        "campaign_name": campaign.name,
        "decision_id": decision.id,
        "action": decision.action,
        "winner_variant_id": decision.winner_variant_id,
        "automatic": decision.automatic,
        "reason": decision.reason,
        "created_at": decision.created_at.isoformat(),
    }
    webhooks.enqueue(campaign.site_id, urls, DECISION_MADE, [(data, decision.created_at)])


#: Seconds a manual promotion waits for its webhook before leaving it to the next round.
MANUAL_WEBHOOK_TIMEOUT_S = 2.0


def _deliver_webhooks() -> int:
    return webhooks.deliver_pending().delivered


# -- the background scheduler -----------------------------------------------------------------

#: The ``evaluator_locks`` row whose ``locked_until`` is when the servers' next round is due.
SCHEDULE_NAME = "evaluate-schedule"


def claim_scheduled_round(interval_s: float, now: datetime | None = None) -> bool:
    """Claim the installation's next background round if it is due, and move the due time on.

    Every ``funnelcake worker`` runs the evaluate job: without this each would run a round of
    its own every interval, one after the other under the round's lock. One conditional UPDATE
    (compare-and-set) of a single row lets exactly one of them through per interval.
    """
    now = now or utcnow()
    insert_ignoring_conflicts(EvaluatorLock, [{"name": SCHEDULE_NAME}], ["name"])
    claimed = db.session.execute(
        update(EvaluatorLock)
        .where(
            EvaluatorLock.name == SCHEDULE_NAME,
            (EvaluatorLock.locked_until.is_(None)) | (EvaluatorLock.locked_until <= now),
        )
        .values(
            holder=f"{socket.gethostname()}:{os.getpid()}",
            locked_until=now + timedelta(seconds=interval_s),
        )
    ).rowcount
    db.session.commit()
    return claimed == 1


def background_interval_s(app) -> float:
    """Seconds between the background rounds a worker of this app runs; 0 when they are off
    (``EVALUATE_INTERVAL_S`` at 0, e.g. with a cron job instead, or under ``TESTING``)."""
    if app.config.get("TESTING"):
        return 0.0
    return float(app.config["EVALUATE_INTERVAL_S"] or 0)
