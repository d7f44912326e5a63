"""One runner for all background work: each job loops in a thread of its own, in the app context.

A job's ``run`` does one unit of work and says how much it did; when it did nothing (or less
than its ``full`` unit) the loop sleeps ``idle_s`` before asking again, otherwise it asks again
at once, so a backlog drains at full speed, an idle installation costs a cheap query every
``idle_s``, and a steady trickle is taken in chunks gathered over ``idle_s``. A failing run is
logged and retried after ``idle_s``: one bad round never stops the runner. Jobs must be safe to
run in several runners at once (the applier claims its chunks, promotion rounds are claimed once
per interval, deliveries a leased batch at a time), so an installation may run as many workers
as it likes.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ...extensions import db

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    #: Does one unit of work; returns how much (0: nothing to do).
    run: Callable[[], int]
    #: Seconds to wait after a run that found nothing to do (or failed).
    idle_s: float
    #: What a run does at most (the applier's chunk), or 0. A run that did less found the
    #: backlog drained: it too waits ``idle_s``, so the next run takes what gathered meanwhile
    #: in one go instead of chasing each request's events with a transaction of its own.
    full: int = 0


@dataclass
class JobRunner:
    """The threads of one process's jobs; :meth:`stop` ends them after their current run."""

    app: object
    jobs: list[Job]
    stopping: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> "JobRunner":
        for job in self.jobs:
            thread = threading.Thread(
                target=self._loop, args=(job,), name=f"funnelcake-{job.name}", daemon=True
            )
            self.threads.append(thread)
            thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout_s)

    def _loop(self, job: Job) -> None:
        while not self.stopping.is_set():
            done = 0
            with self.app.app_context():
                try:
                    done = job.run()
                except Exception:  # a failed run must not end the job
                    log.exception("background job %s failed", job.name)
                    db.session.rollback()
                finally:
                    db.session.remove()
            if not done or done < job.full:
                self.stopping.wait(job.idle_s)
