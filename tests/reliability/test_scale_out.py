"""Scale-out: two server instances and two appliers on one PostgreSQL apply every event once.

The deployment the README describes for growing past one machine: several gunicorn instances
store the events, several ``funnelcake worker`` processes apply them, sharing the queue with
``FOR UPDATE SKIP LOCKED``. Storefronts send each batch to one instance and again to the other
(a retry that a load balancer sent elsewhere). The appliers are paused meanwhile, so that a
backlog of a chunk per applier builds, then resumed while a lock on the events table lets them
claim but not write: several are then mid-chunk at once, each with its own chunk, and every
visitor has events in each (their batches were sent in turns), so an applier that did not
lock the assignments it folds into would lose the others' increments. Once the lock is released
and the backlog is gone, every acknowledged event is stored once and folded once. PostgreSQL
only: on SQLite one applier runs.
"""

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import SimpleNamespace

import psycopg
import pytest
from sqlalchemy import and_, distinct, func, select

from tests.conftest import _postgres_database
from tests.helpers import configured_app, migrate
from tests.reliability.servers import (
    Gunicorn,
    Worker,
    decided,
    event_batches,
    post_public,
    seed_site,
)
from widget_server.extensions import db
from widget_server.models import EXPOSURE, Assignment, Event, Response, VariantMetric

CLIENTS = 8
VISITORS_PER_CLIENT = 5
EVENTS_PER_VISITOR = 50
BATCH_SIZE = 10
ORIGIN = "https://shop.example"
#: Events each applier claims at a time; the workers run four appliers each on PostgreSQL.
CHUNK = 250


@pytest.fixture(scope="module")
def deployment(request):
    """One PostgreSQL database, two gunicorn instances and two ``funnelcake worker``s on it."""
    url = _postgres_database(request)
    migrate(url)
    site, campaign = seed_site(url, origins=[ORIGIN])
    servers = [Gunicorn(url, workers=2) for _ in range(2)]
    # Chunks small enough that the backlog holds one for each of the workers' appliers.
    workers = [Worker(url, env={"FUNNELCAKE_APPLIER_CHUNK": str(CHUNK)}) for _ in range(2)]
    yield SimpleNamespace(url=url, site=site, campaign=campaign, servers=servers, workers=workers)
    for process in (*workers, *servers):
        process.stop()


def _send(server, site, batch) -> dict:
    answer = post_public(
        server.base_url, site["site_key"], "events", {"events": batch}, origin=ORIGIN, timeout_s=60
    )
    assert answer.status == 202, (answer.status, answer.body[:300])
    return answer.json()


def _storefront(deployment, index: int) -> tuple[list[dict], list[dict]]:
    """A client's visitors decide on one instance, then send their batches in turns (so every
    visitor has events all along the backlog, in every applier's chunk): each batch to one
    instance and again to the other, half the time both copies at the same moment. Returns the
    events sent and the answers received."""
    rng = random.Random(index)
    site, campaign = deployment.site, deployment.campaign
    visitors = [
        event_batches(f"scale-{index}-{number}", campaign, EVENTS_PER_VISITOR, BATCH_SIZE)
        for number in range(VISITORS_PER_CLIENT)
    ]
    for batches in visitors:
        server = rng.choice(deployment.servers)
        decided(server.base_url, site["site_key"], batches[0][0]["visitor_id"], ORIGIN)
    sent, answers = [], []
    for turn in zip(*visitors, strict=True):
        for batch in turn:
            first, second = rng.sample(deployment.servers, 2)
            if rng.random() < 0.5:
                answers += [_send(first, site, batch), _send(second, site, batch)]
            else:
                barrier = threading.Barrier(2)

                def copy(server, batch=batch, barrier=barrier):
                    barrier.wait()
                    return _send(server, site, batch)

                with ThreadPoolExecutor(max_workers=2) as pair:
                    copies = [pair.submit(copy, first), pair.submit(copy, second)]
                    answers += [future.result() for future in copies]
            sent += batch
    return sent, answers


@contextmanager
def appliers_held_mid_chunk(url: str):
    """Hold ``events`` in SHARE mode: appliers still claim their chunks (row locks) and read
    what they fold into, then wait, at their first write or for the assignments another one
    holds locked. Yields how many sessions wait."""
    with psycopg.connect(url.replace("+psycopg", "")) as connection:
        connection.execute("LOCK TABLE events IN SHARE MODE")

        def waiting() -> int:
            # Within a transaction the activity view is read once; take a fresh look each time.
            connection.execute("SELECT pg_stat_clear_snapshot()")
            return connection.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).fetchone()[0]

        try:
            yield waiting
        finally:
            connection.rollback()


def test_two_instances_and_two_appliers_apply_every_event_once(deployment):
    total = CLIENTS * VISITORS_PER_CLIENT * EVENTS_PER_VISITOR
    assert total >= 8 * CHUNK  # a backlog of a chunk at least for each of the eight appliers
    for worker in deployment.workers:
        worker.pause()
    try:
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            results = list(pool.map(lambda i: _storefront(deployment, i), range(CLIENTS)))
        with appliers_held_mid_chunk(deployment.url) as waiting:
            for worker in deployment.workers:
                worker.resume()
            deadline = time.monotonic() + 20
            while waiting() < len(deployment.workers):  # both mid-chunk, neither committed
                assert time.monotonic() < deadline, "the appliers did not both start a chunk"
                time.sleep(0.05)
    finally:
        for worker in deployment.workers:
            worker.resume()
    sent = [event for events, _ in results for event in events]
    answers = [answer for _, batch_answers in results for answer in batch_answers]
    for worker in deployment.workers:
        worker.wait_until_applied(timeout_s=60)

    assert len({e["id"] for e in sent}) == len(sent) == total
    # Each batch went out twice: one copy stored it, the other found every event a duplicate.
    assert sum(a["accepted"] for a in answers) == total
    assert sum(a["duplicates"] for a in answers) == total
    campaign_id = deployment.campaign["id"]
    impressions_sent = sum(1 for e in sent if e["type"] == "impression")
    answering = {e["visitor_id"] for e in sent if e["type"] == "answer"}
    assert all(worker.process.poll() is None for worker in deployment.workers)

    app = configured_app(deployment.url)
    with app.app_context():
        of_site = Event.site_id == deployment.site["id"]
        stored = db.session.scalar(select(func.count()).where(of_site))
        stored_ids = db.session.scalar(
            select(func.count(distinct(Event.event_uuid))).where(of_site)
        )
        pending = db.session.scalar(select(func.count()).where(of_site, Event.pending))
        without_visitor = db.session.scalar(
            select(func.count()).where(of_site, Event.visitor_id.is_(None))
        )
        # Impression events naming a campaign their visitor is assigned to (what must count).
        assigned_impressions = db.session.scalar(
            select(func.count())
            .select_from(Event)
            .join(
                Assignment,
                and_(
                    Assignment.campaign_id == Event.campaign_id,
                    Assignment.visitor_id == Event.visitor_id,
                ),
            )
            .where(of_site, Event.type == "impression", Assignment.variant_id.is_not(None))
        )
        applied_impressions = db.session.scalar(
            select(func.sum(Assignment.impressions)).where(Assignment.campaign_id == campaign_id)
        )
        responses = db.session.scalars(
            select(Response).where(Response.campaign_id == campaign_id)
        ).all()
        exposed = db.session.scalar(
            select(func.sum(VariantMetric.visitors)).where(
                VariantMetric.campaign_id == campaign_id, VariantMetric.metric == EXPOSURE
            )
        )
        db.session.remove()
        db.engine.dispose()

    assert stored == stored_ids == total
    assert pending == 0 and without_visitor == 0
    assert applied_impressions == assigned_impressions == impressions_sent
    assert len(responses) == len(answering) == CLIENTS * VISITORS_PER_CLIENT
    assert all(r.answers["q1"]["value"] == "search" for r in responses)
    # Each visitor with an impression counts once in the results, whichever applier saw it.
    assert exposed == CLIENTS * VISITORS_PER_CLIENT
