"""Background promotion rounds run once per interval for the whole installation, however many
workers run the evaluate job (the demo's and the worker's own rounds are tested in
tests/reliability/test_demo_rounds.py).
"""

import threading
from datetime import timedelta

from widget_server.extensions import db
from widget_server.models import EvaluatorLock
from widget_server.services.promotion.evaluation import SCHEDULE_NAME, claim_scheduled_round

INTERVAL_S = 300.0


def test_one_of_several_workers_claims_each_round(app):
    claims = []
    barrier = threading.Barrier(4)

    def worker():
        with app.app_context():
            barrier.wait()
            claims.append(claim_scheduled_round(INTERVAL_S))
            db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(claims) == [False, False, False, True]
    assert claim_scheduled_round(INTERVAL_S) is False  # the next round is not due yet


def test_next_round_is_claimed_once_the_interval_has_passed(app):
    assert claim_scheduled_round(INTERVAL_S) is True
    shift_schedule(timedelta(seconds=INTERVAL_S - 10))
    assert claim_scheduled_round(INTERVAL_S) is False
    shift_schedule(timedelta(seconds=20))
    assert claim_scheduled_round(INTERVAL_S) is True
    assert claim_scheduled_round(INTERVAL_S) is False


def shift_schedule(delta: timedelta) -> None:
    """Move the due time of the next round ``delta`` into the past, as if time had passed."""
    schedule = db.session.get(EvaluatorLock, SCHEDULE_NAME)
    schedule.locked_until -= delta
    db.session.commit()
