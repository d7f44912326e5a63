"""Many clients re-sending every batch against gunicorn: each event is stored and counted once."""

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from tests.helpers import ORIGIN, configured_app
from tests.reliability.servers import (
    decided,
    event_batches,
    post_public,
)
from widget_server.extensions import db
from widget_server.models import Assignment, Event, Response

CLIENTS = 50
EVENTS_PER_CLIENT = 200
BATCH_SIZE = 20


def _send(served, batch):
    answer = post_public(
        served.server.base_url,
        served.site["site_key"],
        "events",
        {"events": batch},
        origin=ORIGIN,
        timeout_s=60,
    )
    assert answer.status == 202, (answer.status, answer.body[:300])
    return answer.json()


def _client(served, index, answers, lock):
    """One storefront: each batch goes out twice, the way a retry after a lost answer does.

    Even clients re-send a batch after sending the next one; odd clients send both copies at
    the same moment, so two workers insert the same ids concurrently.
    """
    batches = event_batches(f"client-{index:02d}", served.campaign, EVENTS_PER_CLIENT, BATCH_SIZE)
    decided(served.server.base_url, served.site["site_key"], batches[0][0]["visitor_id"], ORIGIN)
    got = []
    if index % 2 == 0:
        for position, batch in enumerate(batches):
            got.append(_send(served, batch))
            if position:
                got.append(_send(served, batches[position - 1]))
        got.append(_send(served, batches[-1]))
    else:
        with ThreadPoolExecutor(max_workers=2) as pair:
            for batch in batches:
                barrier = threading.Barrier(2)

                def copy(batch=batch, barrier=barrier):
                    barrier.wait()
                    return _send(served, batch)

                got.extend(f.result() for f in [pair.submit(copy), pair.submit(copy)])
    with lock:
        answers.extend(got)
    return batches


def test_every_batch_sent_twice_stores_each_event_once(served):
    answers, lock = [], threading.Lock()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        futures = [pool.submit(_client, served, i, answers, lock) for i in range(CLIENTS)]
        sent = [event for f in futures for batch in f.result() for event in batch]

    total = CLIENTS * EVENTS_PER_CLIENT
    assert len(sent) == total == 10_000
    assert sum(a["accepted"] for a in answers) == total
    assert sum(a["duplicates"] for a in answers) == total
    impressions_sent = sum(1 for e in sent if e["type"] == "impression")
    served.worker.wait_until_applied()

    app = configured_app(served.url)
    with app.app_context():
        site_id = served.site["id"]
        stored = db.session.scalar(
            select(func.count()).select_from(Event).where(Event.site_id == site_id)
        )
        distinct = db.session.scalar(
            select(func.count(func.distinct(Event.event_uuid))).where(Event.site_id == site_id)
        )
        impressions = db.session.scalar(
            select(func.sum(Assignment.impressions)).where(
                Assignment.campaign_id == served.campaign["id"]
            )
        )
        responses = db.session.scalar(
            select(func.count())
            .select_from(Response)
            .where(Response.campaign_id == served.campaign["id"])
        )
        db.session.remove()
        db.engine.dispose()
    assert stored == distinct == 10_000
    # Folded effects count each event once too: no impression is counted twice.
    assert impressions == impressions_sent
    assert responses == CLIENTS
