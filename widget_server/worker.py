"""The installation's background work, as ``funnelcake worker`` runs it.

- ``apply-events-<n>``: folds stored events into assignments, responses, rollups and stages
  (``APPLIERS`` of them: four on PostgreSQL, where they claim chunks side by side, one on
  SQLite);
- ``evaluate``: the promotion round, once per ``EVALUATE_INTERVAL_S`` for the installation;
- ``deliver-webhooks``: posts the signed webhooks that changes recorded, when each is due (its
  retries back off over a day);
- ``response-partials``: records the ``response.partial`` webhooks of survey responses left
  unfinished (``RESPONSE_PARTIAL_AFTER_MIN``), for the sites that asked for them;
- ``funnel-figures``: recomputes the funnel figure snapshots readers found stale.

Web processes start none of it (``create_app`` and the gunicorn configuration start no thread):
run ``funnelcake worker`` beside them, as many as you like. ``funnelcake demo`` runs the same
runner in its own process, so the embedded setup is still one command.
"""

import logging

from .services.funnel.figures import snapshots
from .services.ingest.applier import ClaimCursor, apply_pending
from .services.ingest.response_webhooks import queue_partials
from .services.platform.jobs import Job, JobRunner
from .services.platform.webhooks import deliver_pending
from .services.promotion.evaluation import background_interval_s, claim_scheduled_round, run_round

log = logging.getLogger(__name__)

#: Seconds between scans for unfinished responses when the last found nothing new: the idle time
#: they wait for is counted in minutes.
PARTIALS_SCAN_IDLE_S = 30.0


def installation_jobs(app) -> list[Job]:
    """The jobs this app's configuration asks for (promotion rounds only with an interval)."""
    chunk, idle_s = applier_chunk(app), float(app.config["APPLIER_IDLE_S"])
    cursor = ClaimCursor()  # the appliers of this process claim one after the other
    jobs = [
        Job(f"apply-events-{n + 1}", lambda: apply_pending(chunk, cursor), idle_s, full=chunk)
        for n in range(appliers(app))
    ]
    jobs += [
        Job("deliver-webhooks", _deliver_webhooks, float(app.config["WEBHOOK_INTERVAL_S"])),
        Job("response-partials", queue_partials, PARTIALS_SCAN_IDLE_S),
        Job("funnel-figures", snapshots().refresh_one, 1.0),
    ]
    interval_s = background_interval_s(app)
    if interval_s:
        jobs.append(Job("evaluate", lambda: _evaluate(interval_s), interval_s))
    return jobs


def appliers(app) -> int:
    """How many appliers a worker runs (``APPLIERS``; 0 chooses by the database)."""
    return _by_database(app, "APPLIERS", postgresql=4, sqlite=1)


def applier_chunk(app) -> int:
    """How many events an applier folds per transaction (``APPLIER_CHUNK``; 0: by database)."""
    return _by_database(app, "APPLIER_CHUNK", postgresql=2000, sqlite=1000)


def _by_database(app, setting: str, postgresql: int, sqlite: int) -> int:
    configured = int(app.config[setting])
    if configured > 0:
        return configured
    return postgresql if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql") else sqlite


def start_worker(app) -> JobRunner:
    """Start this process's background jobs (daemon threads); stop them with ``.stop()``."""
    return JobRunner(app, installation_jobs(app)).start()


def _deliver_webhooks() -> int:
    """One round; what it attempted (a full round is followed by the next at once)."""
    return deliver_pending().attempted


def _evaluate(interval_s: float) -> int:
    """One promotion round when the installation's next one is due (0: wait for the next)."""
    if claim_scheduled_round(interval_s):
        report = run_round()
        if report.acquired and (report.promoted or report.stopped):
            log.info("evaluation round: %s", report.as_json())
    return 0
