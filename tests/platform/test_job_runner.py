"""The job runner: a run that did a full unit is followed by the next at once; one that did
less (the backlog is drained) or nothing waits ``idle_s``, so a trickle of events is applied in
chunks gathered over that time instead of a transaction per request."""

import pytest

from widget_server.services.platform.jobs import Job, JobRunner


class CountedStop:
    """``JobRunner.stopping``, recording each wait; set once ``runs`` runs have happened."""

    def __init__(self, runs: int):
        self.runs = runs
        self.waits: list[tuple[int, float]] = []
        self.done = 0

    def is_set(self) -> bool:
        return self.done >= self.runs

    def wait(self, seconds: float) -> bool:
        self.waits.append((self.done, seconds))
        return self.is_set()


@pytest.mark.parametrize(
    ("results", "waits_after"),
    [
        ([1000, 1000, 1000, 0], [4]),  # a backlog drains without waiting, then idles
        ([1000, 40, 1000, 1000], [2]),  # a partial chunk: wait for more to gather
        ([0, 5, 0, 999], [1, 2, 3, 4]),
    ],
)
def test_only_full_runs_are_followed_at_once(app, results, waits_after):
    stop = CountedStop(len(results))
    left = list(results)

    def run() -> int:
        stop.done += 1
        return left.pop(0)

    runner = JobRunner(app, [Job("apply", run, idle_s=0.2, full=1000)])
    runner.stopping = stop
    runner._loop(runner.jobs[0])

    assert [after for after, _ in stop.waits] == waits_after
    assert all(seconds == 0.2 for _, seconds in stop.waits)


def test_a_job_without_a_full_unit_waits_only_when_it_did_nothing(app):
    stop = CountedStop(3)
    left = [3, 1, 0]

    def run() -> int:
        stop.done += 1
        return left.pop(0)

    runner = JobRunner(app, [Job("deliver", run, idle_s=2.0)])
    runner.stopping = stop
    runner._loop(runner.jobs[0])

    assert stop.waits == [(3, 2.0)]
