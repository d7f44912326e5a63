"""Group commit: concurrent submitters share writes, each gets its own result, failures reach
every member of a group, and one bad member cannot fail the rest."""

import threading
import time

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from widget_server.services.platform.group_commit import GroupCommit


class SlowStore:
    """A write that takes a moment (as a database round trip does) and records its groups."""

    def __init__(self, seconds=0.02, refuse=None, fail_with=None):
        self.seconds = seconds
        self.refuse = refuse
        self.fail_with = fail_with
        self.groups = []

    def __call__(self, works):
        self.groups.append(list(works))
        time.sleep(self.seconds)
        if self.fail_with is not None:
            raise self.fail_with
        if self.refuse is not None and self.refuse in works:
            raise IntegrityError("INSERT", {}, Exception("refused"))
        return [work * 10 for work in works]


def _submit_all(writer, works):
    results, errors = {}, {}
    start = threading.Barrier(len(works))

    def run(work):
        start.wait()
        try:
            results[work] = writer.submit(work)
        except Exception as error:  # noqa: BLE001 (recorded for the assertions)
            errors[work] = error

    threads = [threading.Thread(target=run, args=(w,)) for w in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    return results, errors


def test_alone_a_request_writes_at_once_in_a_group_of_its_own():
    store = SlowStore(seconds=0)
    writer = GroupCommit(store)
    assert writer.submit(1) == 10
    assert writer.submit(2) == 20
    assert store.groups == [[1], [2]]


def test_concurrent_requests_share_writes_and_each_gets_its_result():
    store = SlowStore()
    writer = GroupCommit(store)
    results, errors = _submit_all(writer, list(range(1, 41)))
    assert not errors
    assert results == {work: work * 10 for work in range(1, 41)}
    written = [work for group in store.groups for work in group]
    assert sorted(written) == list(range(1, 41))  # each exactly once
    assert len(store.groups) < 40 / 2  # while one group is written, the next one gathers


def test_a_failed_write_fails_every_request_of_its_group():
    down = OperationalError("INSERT", {}, Exception("server closed the connection"))
    writer = GroupCommit(SlowStore(fail_with=down))
    results, errors = _submit_all(writer, list(range(1, 11)))
    assert not results
    assert set(errors) == set(range(1, 11))
    assert all(error is down for error in errors.values())


def test_one_refused_request_does_not_fail_the_others_of_its_group():
    store = SlowStore(refuse=7)
    writer = GroupCommit(store)
    results, errors = _submit_all(writer, list(range(1, 11)))
    assert set(errors) == {7} and isinstance(errors[7], IntegrityError)
    assert results == {work: work * 10 for work in range(1, 11) if work != 7}


def test_a_leader_interrupted_mid_write_leaves_the_others_to_the_next_leader():
    """A greenlet killed while it writes for its group (a gevent timeout): the others of the
    group are written by the next leader, not left waiting for ever."""

    class Interrupted(BaseException):
        pass

    calls = []

    def write(works):
        calls.append(list(works))
        if len(calls) == 1:
            time.sleep(0.1)  # the others queue up behind this write
        elif len(calls) == 2:
            raise Interrupted
        return [w * 10 for w in works]

    writer = GroupCommit(write)
    first = threading.Thread(target=writer.submit, args=(1,))
    first.start()
    time.sleep(0.02)
    outcome = {}

    def run(work):
        try:
            outcome[work] = writer.submit(work)
        except Interrupted:
            outcome[work] = "interrupted"

    others = [threading.Thread(target=run, args=(w,)) for w in (2, 3, 4)]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join(timeout=5)
    assert calls[0] == [1] and sorted(calls[1]) == [2, 3, 4]
    interrupted = [w for w, result in outcome.items() if result == "interrupted"]
    assert len(interrupted) == 1  # the leader of the second group
    assert {w: r for w, r in outcome.items() if w not in interrupted} == {
        w: w * 10 for w in (2, 3, 4) if w not in interrupted
    }


@pytest.mark.parametrize("works", [[], [5]])
def test_counts_of_groups_are_kept(works):
    writer = GroupCommit(SlowStore(seconds=0))
    for work in works:
        writer.submit(work)
    assert writer.groups == len(works) and writer.works == len(works)


_GEVENT_BURST = """
from gevent import monkey
monkey.patch_all()
import gevent
from widget_server.services.platform.group_commit import GroupCommit

groups = []
def write(works):
    groups.append(list(works))
    gevent.sleep(0.01)  # a database round trip: the hub runs the others meanwhile
    return works

writer = GroupCommit(write)
burst = [gevent.spawn(writer.submit, n) for n in range(8)]
gevent.joinall(burst, timeout=10)
assert [g.value for g in burst] == list(range(8)), [g.value for g in burst]
print(len(groups), [len(g) for g in groups])
"""


def test_under_gevent_a_burst_is_written_as_one_group_not_the_first_alone():
    """Greenlets run one at a time: without letting the others reach ``submit``, the first of
    a burst would write alone and the seven others in a second transaction."""
    import subprocess
    import sys

    pytest.importorskip("gevent")
    ran = subprocess.run(
        [sys.executable, "-c", _GEVENT_BURST], capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split()[0] == "1", ran.stdout


def test_a_group_with_an_empty_batch_stores_the_others(app):
    """The events writer, given an empty batch beside others (none reaches it today: a batch
    holds 1 to 100 events), counts it 0 and stores and counts the others; an event sent in two
    batches of a group counts for the first."""
    from widget_server.extensions import db
    from widget_server.models.types import utcnow
    from widget_server.services.campaigns import catalog
    from widget_server.services.ingest.events import _store_batches

    site = catalog.create_site({"name": "Shop", "allowed_origins": ["https://shop.example"]})
    db.session.commit()
    now = utcnow()

    def row(n):
        return {
            "site_id": site.id,
            "event_uuid": f"event-empty-group-{n:04d}",
            "type": "impression",
            "visitor_key": "visitor-empty-group",
            "campaign_id": None,
            "variant_id": None,
            "pending": True,
            "occurred_at": now,
            "received_at": now,
            "data": {},
        }

    assert _store_batches([[row(1), row(2)], [], [row(2), row(3)]]) == [2, 0, 1]
    assert _store_batches([[], []]) == [0, 0]
