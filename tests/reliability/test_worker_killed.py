"""A gunicorn worker killed (SIGKILL) in the middle of a request loses nothing acknowledged.

To kill a worker that is surely mid-request, the test holds a database lock that ingestion needs
(on PostgreSQL after the batch's events are inserted, before the commit), waits until a worker
holds a client connection, and kills that worker. The killed request was never acknowledged; its
client sends it again, as the snippet does.
"""

import os
import signal
import sqlite3
import time
from contextlib import contextmanager

import psycopg
from sqlalchemy import func, select

from tests.helpers import ORIGIN, configured_app, until
from tests.reliability.servers import storefronts, workers_mid_request
from widget_server.extensions import db
from widget_server.models import Assignment, Event

CLIENTS = 4


@contextmanager
def writes_blocked(served):
    """Hold a lock that makes every ingesting request wait, mid-transaction."""
    if served.url.startswith("sqlite"):
        connection = sqlite3.connect(served.url.removeprefix("sqlite:///"), timeout=15)
        connection.isolation_level = None
        connection.execute("BEGIN IMMEDIATE")  # the one writer's lock: inserts wait for it
        try:
            yield lambda: True
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    with psycopg.connect(served.url.replace("+psycopg", "")) as connection:
        # Reads go on; the events endpoint waits at its INSERT, inside its transaction.
        connection.execute("LOCK TABLE events IN EXCLUSIVE MODE")

        def someone_waits() -> bool:
            waiting = connection.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).fetchone()[0]
            return waiting > 0

        try:
            yield someone_waits
        finally:
            connection.rollback()


def test_killed_worker_loses_no_acknowledged_event(served):
    with storefronts(served, CLIENTS, "kill", ORIGIN) as clients:
        assert until(lambda: all(c.acknowledged for c in clients), interval_s=0.02), "timed out"
        with writes_blocked(served) as someone_waits:
            assert until(
                lambda: workers_mid_request(served.server) and someone_waits(), interval_s=0.02
            ), "timed out"
            time.sleep(0.2)  # SQLite shows no waiters: let the request reach its insert
            victim = workers_mid_request(served.server)[0]
            os.kill(victim, signal.SIGKILL)
        assert until(lambda: victim not in served.server.worker_pids(), interval_s=0.02), (
            "timed out"
        )
        served.server.wait_for_workers()  # the master replaces it
        time.sleep(1.0)  # more traffic through the replacement worker

    assert all(not c.is_alive() for c in clients)
    # The killed request broke its client's connection (so it was mid-request, unacknowledged).
    assert sum(c.connection_errors for c in clients) >= 1
    assert all(a.status == 202 for c in clients for a in c.answers)
    acknowledged = {event_id for c in clients for event_id in c.acknowledged}
    served.worker.wait_until_applied()
    app = configured_app(served.url)
    with app.app_context():
        stored = set(
            db.session.scalars(select(Event.event_uuid).where(Event.site_id == served.site["id"]))
        )
        impressions_stored = db.session.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.site_id == served.site["id"], Event.type == "impression")
        )
        impressions_counted = db.session.scalar(
            select(func.sum(Assignment.impressions)).where(
                Assignment.campaign_id == served.campaign["id"]
            )
        )
        db.session.remove()
        db.engine.dispose()
    # Everything acknowledged is stored; the killed transaction left nothing half-done behind
    # (its events were stored once, by the retry), and no effect was counted twice.
    assert stored == acknowledged
    assert impressions_counted == impressions_stored
