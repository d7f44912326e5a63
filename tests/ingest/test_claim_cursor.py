"""The appliers claim after the newest event they claimed, and sweep from the start again so
that an event left behind the cursor is still applied; the backlog probe reads the queue's
index, not the whole log."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from tests.helpers import decide, event, send_events
from widget_server.extensions import db
from widget_server.models import Assignment, Event
from widget_server.services.ingest import applier
from widget_server.services.platform.plans import through_indexes
from widget_server.services.promotion import results


@pytest.fixture
def deferred(app, monkeypatch):
    monkeypatch.setitem(app.config, "EVENTS_APPLY_INLINE", False)


def pending_ids() -> list[int]:
    db.session.rollback()
    return list(db.session.scalars(select(Event.id).where(Event.pending).order_by(Event.id)))


def store_a_log_a_third_pending() -> None:
    """60,000 events, the last 20,000 pending: a log as a load leaves it."""
    db.session.execute(
        text(
            "INSERT INTO events (site_id, event_uuid, type, visitor_key, pending, occurred_at,"
            " received_at, data) SELECT 1, 'e-' || n, 'impression', 'v', n > 40000, now(), now(),"
            " '{}' FROM generate_series(1, 60000) AS n"
        )
    )
    db.session.commit()


def impressions_by_visitor() -> list[int]:
    db.session.rollback()
    return list(db.session.scalars(select(Assignment.impressions).order_by(Assignment.id)))


def test_a_chunk_that_failed_behind_the_cursor_is_applied_at_the_next_sweep(
    app, client, deferred, make_site, make_campaign, monkeypatch
):
    site = make_site()
    campaign = make_campaign(site)
    variant = campaign["variants"][0]["id"]
    visitors = [f"cursor-{i:02d}" for i in range(30)]
    for visitor in visitors:
        assert decide(client, site, visitor).status_code == 200
    for visitor in visitors:  # one batch each: ids in the visitors' order
        send_events(client, site, [event("impression", visitor, campaign["id"], variant)])
    stored = pending_ids()
    clock = [1000.0]
    monkeypatch.setattr(applier.time, "monotonic", lambda: clock[0])
    cursor = applier.ClaimCursor()
    folded = applier._apply

    def dies(rows):
        raise RuntimeError("the applier dies before its commit")

    monkeypatch.setattr(applier, "_apply", dies)
    with pytest.raises(RuntimeError):
        applier.apply_pending(10, cursor)  # claims the first ten, then fails
    db.session.rollback()
    monkeypatch.setattr(applier, "_apply", folded)

    assert applier.apply_pending(10, cursor) == 10
    assert pending_ids() == stored[:10] + stored[20:]  # the first ten left behind the cursor
    assert applier.apply_pending(10, cursor) == 10
    assert applier.apply_pending(10, cursor) == 0  # the head; no sweep before SWEEP_S
    assert applier.apply_pending(10, cursor) == 0
    clock[0] += applier.SWEEP_S
    assert applier.apply_pending(10, cursor) == 10  # the sweep

    assert pending_ids() == []
    assert impressions_by_visitor() == [1] * 30  # each applied once


def test_a_claim_sweeps_from_the_start_once_sweep_s_has_passed(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(applier.time, "monotonic", lambda: clock[0])
    cursor = applier.ClaimCursor()
    full = [{"id": n} for n in range(41, 51)]

    assert cursor.start() == 0
    cursor.claimed(full)
    clock[0] += applier.SWEEP_S / 2
    assert cursor.start() == 50
    cursor.claimed([{"id": 30}])  # a straggler found by another applier's sweep
    assert cursor.after == 50  # never moves back
    clock[0] += applier.SWEEP_S / 2
    assert cursor.start() == 0


def test_the_reads_of_pending_events_go_through_the_queue_index_not_the_whole_log(
    app, client, deferred
):
    """A new installation's statistics say the table is empty; with a log of applied events
    and a backlog a third its size, the planner would read the whole log at every probe."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the plan is PostgreSQL's; SQLite reads the partial index by itself")
    db.session.execute(text("ANALYZE events"))
    store_a_log_a_third_pending()

    assert applier.backlog()["pending_events"] == 20000
    for statement in (applier.BACKLOG, results.OLDEST_PENDING):
        with through_indexes() as connection:
            sql = str(statement.compile(dialect=connection.dialect))
            plan = "\n".join(connection.exec_driver_sql("EXPLAIN " + sql, {"site_id": 1}).scalars())
        assert "ix_events_pending" in plan and "Seq Scan" not in plan, plan


def test_the_drivers_claim_reads_each_event_as_the_orms_statement_does(app, client, deferred):
    """The chunk's claim on PostgreSQL bypasses SQLAlchemy's row processing: it must still give
    UTC times (whatever the session's zone) and the stored JSON as it was sent."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's applier claims through the ORM's statement")
    odd = {"text": "é\u2028\"'<b>", "nested": {"list": [1, 2.5, None, True]}, "big": 2**70}
    db.session.execute(
        Event.__table__.insert(),
        [
            {
                "site_id": 1,
                "event_uuid": f"claim-{n}",
                "type": "answer",
                "visitor_key": f"v-{n}",
                "campaign_id": n or None,
                "variant_id": None,
                "pending": True,
                "occurred_at": datetime(2026, 3, 29, 0, 30 + n, tzinfo=UTC),  # DST in Europe
                "received_at": datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
                "data": odd if n else {},
            }
            for n in range(3)
        ],
    )
    db.session.commit()
    db.session.execute(text("SET TIME ZONE 'Europe/Berlin'"))
    orm = db.session.execute(applier._claims("postgresql")["oldest"], {"limit": 10, "after": 0})
    expected = [row._asdict() for row in orm.all()]
    db.session.rollback()
    db.session.execute(text("SET TIME ZONE 'Europe/Berlin'"))

    claimed = applier._claim("oldest", {"limit": 10, "after": 0})

    assert claimed == expected
    assert [row["occurred_at"].utcoffset() for row in claimed] == [timedelta(0)] * 3
    assert [row["occurred_at"].isoformat() for row in claimed] == [
        "2026-03-29T00:30:00+00:00",
        "2026-03-29T00:31:00+00:00",
        "2026-03-29T00:32:00+00:00",
    ]
    assert claimed[1]["data"] == odd
    db.session.rollback()


def test_the_claim_reads_by_key_though_planned_while_the_log_was_empty(app, client, deferred):
    """The driver prepares a statement run often and PostgreSQL keeps its plan: a worker that
    claimed while the log was empty kept reading and sorting the whole log at every chunk as the
    log grew (until autovacuum analysed it again, a minute or more later)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    db.session.execute(text("ANALYZE events"))
    db.session.commit()
    backend = db.session.scalar(text("SELECT pg_backend_pid()"))
    for _ in range(12):  # prepared by the driver at the 5th run, planned once at the 10th
        assert applier._claim("oldest", {"after": 0, "limit": 2000}) == []
        db.session.commit()
    store_a_log_a_third_pending()

    assert len(applier._claim("oldest", {"after": 0, "limit": 2000})) == 2000
    assert db.session.scalar(text("SELECT pg_backend_pid()")) == backend
    (prepared,) = db.session.scalars(
        text("SELECT name FROM pg_prepared_statements WHERE statement LIKE '%SKIP LOCKED%'")
    )
    plan = "\n".join(db.session.scalars(text(f"EXPLAIN EXECUTE {prepared}(0, 2000)")))
    assert "ix_events_pending" in plan and "Seq Scan" not in plan, plan
    db.session.rollback()
