"""Pooled PostgreSQL connections that died (a restart, a failover): no ping per request, and
still no failed request for work that is safe to repeat, nor for a connection that sat idle."""

import pytest
from sqlalchemy import create_engine, func, select, text

from tests.helpers import decide, event, send_events
from widget_server import extensions
from widget_server.extensions import db
from widget_server.models import Event


@pytest.fixture
def postgres_only(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no connection to lose")


def _end_every_other_session() -> None:
    """What a database restart does to the pool: its connections are closed by the server."""
    outside = create_engine(db.engine.url)
    with outside.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    outside.dispose()


def _pooled_connections_used(client, site) -> None:
    """Put connections in the pool (and leave the test's session without one)."""
    decide(client, site, "visitor-0001")
    db.session.remove()


def test_events_are_stored_when_the_pooled_connection_died_in_use(
    postgres_only, make_app, make_site, make_campaign, monkeypatch
):
    """The site's configuration is cached, so the insert is the request's first statement: it
    meets the dead connection and is repeated on a new one (storing twice stores once)."""
    site = make_site()
    campaign = make_campaign(site)
    served = make_app(CONFIG_CACHE_TTL_S=60.0, EVENTS_APPLY_INLINE=False)
    client = served.test_client()
    shown = (campaign["id"], campaign["variants"][0]["id"])
    assert send_events(client, site, [event("impression", "visitor-0001", *shown)]).json == {
        "accepted": 1,
        "duplicates": 0,
    }
    monkeypatch.setattr(extensions, "IDLE_PING_S", 3600.0)  # no ping: the insert meets it dead
    db.session.remove()
    _end_every_other_session()
    answer = send_events(client, site, [event("impression", "visitor-0002", *shown)])
    assert answer.status_code == 202, answer.json
    assert answer.json == {"accepted": 1, "duplicates": 0}
    db.engine.dispose()  # the test's own pooled connections were ended too
    assert db.session.scalar(select(func.count()).select_from(Event)) == 2


def test_an_idle_pooled_connection_is_tried_before_use(
    postgres_only, client, make_site, make_campaign, monkeypatch
):
    site = make_site()
    make_campaign(site)
    _pooled_connections_used(client, site)
    monkeypatch.setattr(extensions, "IDLE_PING_S", 0.0)  # every pooled connection counts as idle
    _end_every_other_session()
    answer = decide(client, site, "visitor-0002")
    assert answer.status_code == 200, answer.json
    assert answer.json["campaigns"]


def test_decide_answers_when_the_pooled_connection_died_in_use(
    postgres_only, client, make_site, make_campaign, monkeypatch
):
    """Its first statement, the site's configuration read, is repeated on a new connection."""
    site = make_site()
    make_campaign(site)
    _pooled_connections_used(client, site)
    monkeypatch.setattr(extensions, "IDLE_PING_S", 3600.0)
    _end_every_other_session()
    answer = decide(client, site, "visitor-0003")
    assert answer.status_code == 200, answer.json
    assert answer.json["campaigns"]
