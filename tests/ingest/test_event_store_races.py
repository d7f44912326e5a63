"""The events store under races a hostile or flaky browser makes: the same batch in two requests
at once (one group commit), and SQLite's writer lock held by someone else for a while."""

import sqlite3
import threading
import time

import pytest
from sqlalchemy import func, select

from tests.helpers import event, send_events
from widget_server.extensions import db
from widget_server.models import Event
from widget_server.services.ingest import events as ingestion
from widget_server.services.platform import sqlite_lock


def _rows(site_id: int, ids: list[str]) -> list[dict]:
    from widget_server.models.types import utcnow

    now = utcnow()
    return [
        {
            "site_id": site_id,
            "event_uuid": event_id,
            "type": "convert",
            "visitor_key": "visitor-0001",
            "campaign_id": None,
            "variant_id": None,
            "pending": True,
            "occurred_at": now,
            "received_at": now,
            "data": {"name": "purchase"},
        }
        for event_id in ids
    ]


def test_one_batch_replayed_in_the_same_group_counts_once(app, make_site):
    """A browser resending a batch while the first send is still in flight: both land in one
    group commit; the first request counts the events, the replay only duplicates."""
    site = make_site()
    batch = _rows(site["id"], ["replayed-0001", "replayed-0002"])
    other = _rows(site["id"], ["other-00001"])
    assert ingestion._store_batches([batch, other, batch]) == [2, 1, 0]
    assert ingestion._store_batches([batch]) == [0]  # and later still only a duplicate
    assert db.session.scalar(select(func.count()).select_from(Event)) == 3


@pytest.fixture
def sqlite_only(database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL locks rows, not the database")
    return database_url.split("///", 1)[1]


def _hold_writer_lock(path: str, seconds: float) -> threading.Thread:
    def hold():
        other = sqlite3.connect(path, timeout=30)
        other.execute("BEGIN IMMEDIATE")
        time.sleep(seconds)
        other.rollback()
        other.close()

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.05)  # taken before the request arrives
    return holder


def test_events_wait_for_a_writer_lock_held_elsewhere_and_are_stored(
    sqlite_only, make_app, make_site
):
    site = make_site()
    client = make_app(EVENTS_APPLY_INLINE=False).test_client()
    holder = _hold_writer_lock(sqlite_only, 0.3)
    started = time.monotonic()
    answer = send_events(client, site, [event("convert", "visitor-0001", name="purchase")])
    waited = time.monotonic() - started
    holder.join()
    assert answer.status_code == 202, answer.json
    assert answer.json == {"accepted": 1, "duplicates": 0}
    assert waited >= 0.2  # it waited for the lock instead of failing
    assert db.session.scalar(select(func.count()).select_from(Event)) == 1


def test_a_lock_held_past_the_wait_answers_503_and_stores_nothing(
    sqlite_only, make_app, make_site, monkeypatch
):
    site = make_site()
    client = make_app(EVENTS_APPLY_INLINE=False).test_client()
    monkeypatch.setattr(sqlite_lock, "LOCK_WAIT_S", 0.1)
    holder = _hold_writer_lock(sqlite_only, 0.5)
    answer = send_events(client, site, [event("convert", "visitor-0001", name="purchase")])
    holder.join()
    assert answer.status_code == 503, answer.json
    assert answer.headers["Retry-After"]
    assert db.session.scalar(select(func.count()).select_from(Event)) == 0
