"""The events endpoint only stores; the applier folds stored events in bulk, exactly once.

Every test here runs with the applier deferred (``EVENTS_APPLY_INLINE`` off), as in production:
the endpoint's 202 leaves events pending, and the figures move only when the applier runs.
"""

import random
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.event import listen, remove

from tests.helpers import (
    decide,
    event,
    send_events,
    server_environment,
    statements_sent,
    survey_content,
    time_passes,
    until,
)
from widget_server.extensions import db
from widget_server.models import Assignment, Event, Response, Visitor
from widget_server.models.types import utcnow
from widget_server.services.ingest import applier
from widget_server.services.promotion import metrics


@pytest.fixture
def deferred(app, monkeypatch):
    """The production setup: the endpoint stores, the applier (run by the test) applies."""
    monkeypatch.setitem(app.config, "EVENTS_APPLY_INLINE", False)


@pytest.fixture
def ab_survey(make_site, make_campaign):
    site = make_site()
    campaign = make_campaign(
        site,
        variants=[
            {"name": "A", "is_control": True, "content": survey_content()},
            {"name": "B", "content": survey_content()},
        ],
        frequency={"stop_after_complete": True, "days_after_close": 1},
    )
    return site, campaign, [v["id"] for v in campaign["variants"]]


def offered(client, site, visitor) -> dict:
    """The visitor's offers from decide, by campaign id."""
    answer = decide(client, site, visitor)
    assert answer.status_code == 200, answer.json
    return {c["campaign_id"]: c for c in answer.json["campaigns"]}


def send_traffic(client, site, campaign, variants, visitors=80, seed=7):
    """Decide and events for ``visitors``, sent in shuffled batches with re-sends, forged
    variants and conversions before impressions; returns the figures they must make.

    The truth is kept here from what was sent, not read back: a visitor counts under the
    variant decide answered; exposed when an impression was sent, converted when exposed and a
    completion was sent (in whatever order they arrive).
    """
    rng = random.Random(seed)
    expected = {v: [0, 0] for v in variants}
    events = []
    for i in range(visitors):
        visitor = f"applier-{seed}-{i:04d}"
        variant = offered(client, site, visitor)[campaign["id"]]["variant_id"]
        claimed = rng.choice(variants) if rng.random() < 0.1 else variant  # a forged claim
        impressed, completed = rng.random() < 0.85, rng.random() < 0.4
        if impressed:
            events += [event("impression", visitor, campaign["id"], claimed)] * 2  # one re-send
            expected[variant][0] += 1
        if completed:
            events.append(event("answer", visitor, campaign["id"], claimed, step_id="q1",
                                value="search"))  # fmt: skip
            events.append(event("complete", visitor, campaign["id"], claimed))
            expected[variant][1] += impressed
        if rng.random() < 0.2:
            events.append(event("close", visitor, campaign["id"], claimed))
    rng.shuffle(events)  # conversions often arrive before their impression
    for start in range(0, len(events), 25):
        batch = events[start : start + 25]
        assert send_events(client, site, batch).status_code == 202
        if rng.random() < 0.3:
            again = send_events(client, site, batch)  # a whole batch sent twice
            assert again.json["accepted"] == 0
    return {v: tuple(n) for v, n in expected.items()}


def completion_figures(admin, campaign_id) -> dict:
    body = admin.get(f"/api/v1/admin/campaigns/{campaign_id}/results").json
    return {v["variant_id"]: (v["visitors"], v["conversions"]) for v in body["variants"]}


def pending_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(db.func.count()).where(Event.pending))


def test_the_endpoint_stores_a_batch_in_one_statement_and_touches_nothing_else(
    app, client, deferred, ab_survey
):
    site, campaign, (a, _) = ab_survey
    offered(client, site, "visitor-one-statement")
    db.session.remove()
    batch = [event("impression", "visitor-one-statement", campaign["id"], a) for _ in range(10)]
    with statements_sent() as sent:
        answer = send_events(client, site, batch)
    statements = [statement.sql for statement in sent]

    assert answer.status_code == 202 and answer.json == {"accepted": 10, "duplicates": 0}
    # The config cache is off in the tests: its reads (sites, campaigns, stages) aside, one
    # INSERT, and no visitor, assignment, response or rollup is read or written.
    writes = [s for s in statements if not s.lstrip().upper().startswith("SELECT")]
    assert len(writes) == 1 and writes[0].lstrip().upper().startswith("INSERT INTO EVENTS")
    touched = " ".join(statements).lower()
    for table in ("visitors", "assignments", "responses", "variant_metrics"):
        assert f"from {table}" not in touched and f"update {table}" not in touched
    assert pending_count() == 10
    assert db.session.scalar(select(Assignment.impressions)) == 0


def test_applied_figures_equal_what_was_sent(app, client, admin, deferred, ab_survey):
    site, campaign, variants = ab_survey
    expected = send_traffic(client, site, campaign, variants)
    assert all(n == (0, 0) for n in completion_figures(admin, campaign["id"]).values())

    applied = applier.apply_all()

    assert applied > 0 and pending_count() == 0
    assert completion_figures(admin, campaign["id"]) == expected
    assert applier.apply_all() == 0  # nothing is applied twice


def test_small_chunks_give_the_same_figures(app, client, admin, deferred, ab_survey, monkeypatch):
    site, campaign, variants = ab_survey
    expected = send_traffic(client, site, campaign, variants, seed=8)
    monkeypatch.setattr(applier, "CHUNK", 7)

    chunks = 0
    while applier.apply_pending(limit=7):
        chunks += 1

    assert chunks > 10
    assert completion_figures(admin, campaign["id"]) == expected


def test_a_crash_in_the_middle_of_a_chunk_applies_nothing_and_a_rerun_applies_all_once(
    app, client, admin, deferred, ab_survey, monkeypatch
):
    site, campaign, variants = ab_survey
    expected = send_traffic(client, site, campaign, variants, seed=9)
    before = pending_count()
    folded = metrics.IngestMetrics.flush

    def crash_after_half_the_writes(self):
        folded(self)  # the chunk's rollups are written in the transaction...
        raise RuntimeError("the applier dies here")  # ...and it dies before the commit

    monkeypatch.setattr(metrics.IngestMetrics, "flush", crash_after_half_the_writes)
    with pytest.raises(RuntimeError):
        applier.apply_pending(limit=50)
    db.session.rollback()
    assert pending_count() == before
    assert all(n == (0, 0) for n in completion_figures(admin, campaign["id"]).values())

    monkeypatch.setattr(metrics.IngestMetrics, "flush", folded)
    applier.apply_all()
    assert completion_figures(admin, campaign["id"]) == expected


def test_applied_events_carry_the_visitor_and_the_variant_the_server_shows(
    app, client, deferred, ab_survey
):
    site, campaign, (a, b) = ab_survey
    shown = offered(client, site, "visitor-forger")[campaign["id"]]["variant_id"]
    other = b if shown == a else a
    send_events(client, site, [event("impression", "visitor-forger", campaign["id"], other)])
    stored = db.session.scalar(select(Event))
    assert (stored.pending, stored.visitor_id, stored.visitor_key) == (True, None, "visitor-forger")

    applier.apply_all()

    db.session.rollback()
    stored = db.session.scalar(select(Event))
    visitor = db.session.scalar(select(Visitor).where(Visitor.visitor_key == "visitor-forger"))
    assert (stored.pending, stored.visitor_id, stored.variant_id) == (False, visitor.id, shown)


def test_events_of_a_visitor_never_decided_create_the_visitor_and_count_nowhere(
    app, client, admin, deferred, ab_survey
):
    site, campaign, (a, _) = ab_survey
    send_events(client, site, [event("impression", "visitor-no-decide", campaign["id"], a)])

    applier.apply_all()

    db.session.rollback()
    assert db.session.scalar(select(Visitor.id).where(Visitor.visitor_key == "visitor-no-decide"))
    assert db.session.scalar(select(Event.variant_id)) is None
    assert all(n == (0, 0) for n in completion_figures(admin, campaign["id"]).values())


# -- read-your-writes: decide and spin see what the visitor just did, applier or not ----------


def test_a_survey_completed_a_moment_ago_is_not_offered_again_while_the_applier_lags(
    app, client, deferred, ab_survey
):
    site, campaign, _ = ab_survey
    variant = offered(client, site, "visitor-quick")[campaign["id"]]["variant_id"]
    send_events(client, site, [event("complete", "visitor-quick", campaign["id"], variant)])

    again = decide(client, site, "visitor-quick", debug=True).json

    assert campaign["id"] not in {c["campaign_id"] for c in again["campaigns"]}
    assert pending_count() == 1  # nothing was applied: decide read the pending event


def test_a_popup_closed_a_moment_ago_waits_its_days_after_close(app, client, deferred, ab_survey):
    site, campaign, _ = ab_survey
    variant = offered(client, site, "visitor-closer")[campaign["id"]]["variant_id"]
    send_events(client, site, [event("close", "visitor-closer", campaign["id"], variant)])

    assert campaign["id"] not in offered(client, site, "visitor-closer")
    time_passes(timedelta(days=1, minutes=1))
    assert campaign["id"] in offered(client, site, "visitor-closer")


def test_pending_impressions_count_toward_the_cap(app, client, deferred, make_site, make_campaign):
    site = make_site()
    campaign = make_campaign(site, frequency={"max_impressions": 2})
    variant = offered(client, site, "visitor-capped")[campaign["id"]]["variant_id"]
    send_events(client, site, [event("impression", "visitor-capped", campaign["id"], variant)])
    assert campaign["id"] in offered(client, site, "visitor-capped")
    send_events(client, site, [event("impression", "visitor-capped", campaign["id"], variant)])

    assert campaign["id"] not in offered(client, site, "visitor-capped")


def test_a_pending_close_starts_the_site_cooldown(app, client, deferred, make_site, make_campaign):
    site = make_site(cooldown_hours=2)
    first = make_campaign(site, name="First", priority=10)
    second = make_campaign(site, name="Second")
    variant = offered(client, site, "visitor-cooled")[first["id"]]["variant_id"]
    send_events(client, site, [event("close", "visitor-cooled", first["id"], variant)])

    assert offered(client, site, "visitor-cooled") == {}
    time_passes(timedelta(hours=2, minutes=1))
    assert second["id"] in offered(client, site, "visitor-cooled")


def test_a_forged_pending_completion_of_a_campaign_not_assigned_changes_nothing(
    app, client, deferred, ab_survey
):
    site, campaign, (a, _) = ab_survey
    send_events(client, site, [event("complete", "visitor-forged-first", campaign["id"], a)])

    assert campaign["id"] in offered(client, site, "visitor-forged-first")


# -- lag is visible ----------------------------------------------------------------------------


def test_readyz_reports_the_backlog_and_the_age_of_the_oldest_pending_event(
    app, client, deferred, ab_survey
):
    site, campaign, (a, _) = ab_survey
    send_events(
        client, site, [event("impression", f"visitor-lag-{i}", campaign["id"], a) for i in range(3)]
    )
    db.session.execute(update(Event).values(received_at=utcnow() - timedelta(seconds=90)))
    db.session.commit()

    body = client.get("/readyz").json

    assert body["events"]["pending_events"] == 3
    assert 90 <= body["events"]["oldest_pending_age_s"] < 120
    applier.apply_all()
    assert client.get("/readyz").json["events"] == {
        "pending_events": 0,
        "oldest_pending_age_s": 0.0,
    }


def test_results_say_up_to_when_events_are_applied(app, client, admin, deferred, ab_survey):
    site, campaign, (a, _) = ab_survey
    send_events(client, site, [event("impression", "visitor-through", campaign["id"], a)])
    received = db.session.scalar(select(Event.received_at))
    results = f"/api/v1/admin/campaigns/{campaign['id']}/results"

    assert admin.get(results).json["applied_through"] == received.isoformat()
    applier.apply_all()
    assert admin.get(results).json["applied_through"] > received.isoformat()


def test_applied_answers_make_the_same_response_rows(app, client, deferred, ab_survey):
    site, campaign, _ = ab_survey
    variant = offered(client, site, "visitor-answerer")[campaign["id"]]["variant_id"]
    later = [
        event("answer", "visitor-answerer", campaign["id"], variant, step_id="q1", value="friend"),
        event("answer", "visitor-answerer", campaign["id"], variant, step_id="q2", value=4),
        event("complete", "visitor-answerer", campaign["id"], variant),
    ]
    send_events(client, site, later)

    applier.apply_all()

    db.session.rollback()
    response = db.session.scalar(select(Response))
    assert {k: v["value"] for k, v in response.answers.items()} == {"q1": "friend", "q2": 4}
    assert response.completed and response.variant_id == variant
    visitor = db.session.scalar(select(Visitor).where(Visitor.visitor_key == "visitor-answerer"))
    assert visitor.scores.get("intentional") == 4


#: Rows every applier adds to (a survey step's reach, a variant's rollups): each stays locked from
#: its upsert to the commit, so a chunk writes them last.
SHARED_COUNTERS = ("step_reach", "variant_metrics", "stratum_metrics")


def test_a_chunk_writes_the_counters_all_appliers_share_after_everything_else(
    app, client, deferred, ab_survey
):
    site, campaign, _ = ab_survey
    sent = []
    for n in range(3):
        visitor = f"visitor-counted-{n}"
        variant = offered(client, site, visitor)[campaign["id"]]["variant_id"]
        sent += [
            event("impression", visitor, campaign["id"], variant),
            event("answer", visitor, campaign["id"], variant, step_id="q1", value="friend"),
            event("complete", visitor, campaign["id"], variant),
        ]
    send_events(client, site, sent)
    writes = []

    def note_write(connection, cursor, statement, parameters, context, executemany):
        words = statement.split()
        if words[0] in ("INSERT", "UPDATE", "DELETE"):
            writes.append(words[2] if words[0] in ("INSERT", "DELETE") else words[1])

    listen(db.engine, "before_cursor_execute", note_write)
    try:
        assert applier.apply_pending() == 9
    finally:
        remove(db.engine, "before_cursor_execute", note_write)

    first_shared = min(i for i, table in enumerate(writes) if table in SHARED_COUNTERS)
    assert {"step_reach", "variant_metrics"} <= set(writes[first_shared:])
    # Before them: the events, assignments, responses, visitors and the funnel's stage changes.
    assert {"events", "assignments", "responses", "visitors", "stage_changes"} <= set(
        writes[:first_shared]
    )
    assert set(writes[first_shared:]) <= {*SHARED_COUNTERS, "metric_conversions"}


def test_an_applier_killed_mid_chunk_loses_nothing_and_counts_nothing_twice(
    app, client, admin, deferred, ab_survey, database_url, tmp_path
):
    site, campaign, variants = ab_survey
    expected = send_traffic(client, site, campaign, variants, visitors=300, seed=10)
    stored = pending_count()
    db.session.remove()
    applying = subprocess.Popen(
        [sys.executable, "-m", "widget_server", "apply-events", "--chunk", "20"],
        env=server_environment(tmp_path, DATABASE_URL=database_url, SECRET_KEY="tests"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    # Once some chunks are committed, kill it: it is then in the middle of a chunk.
    assert until(lambda: pending_count() < stored - 60, timeout_s=60, interval_s=0.01)
    applying.send_signal(signal.SIGKILL)
    output, _ = applying.communicate(timeout=10)

    assert applying.returncode == -signal.SIGKILL, output
    assert 0 < pending_count() < stored
    applier.apply_all()
    assert pending_count() == 0
    assert completion_figures(admin, campaign["id"]) == expected
