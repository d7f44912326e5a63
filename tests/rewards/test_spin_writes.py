"""A spin reads first and writes last: a few statements, the writer lock held only for the writes.

The spin's conversion is counted exactly once whichever comes first, the spin or the applier's
fold of the wheel's impression: the spin reads the exposure with the assignment locked.
"""

import sqlite3
import threading

import pytest
from sqlalchemy import func, select

from tests.helpers import decide, event, send_events, statements_sent
from tests.rewards.conftest import pool_slice, slice_
from tests.rewards.helpers import spin
from widget_server.extensions import db
from widget_server.models import CouponCode, MetricConversion, Spin
from widget_server.services.ingest import applier
from widget_server.services.promotion.metrics import campaign_figures


@pytest.fixture
def pool_wheel(make_site, make_pool, make_wheel):
    site = make_site()
    pool = make_pool(site, codes=["CODE-A", "CODE-B"])
    wheel = make_wheel(site, [pool_slice("10% off", 1, pool["id"]), slice_("No luck", 0)])
    return site, wheel


def _is_write(sql: str) -> bool:
    return sql.lstrip().split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}


def test_a_first_spin_reads_then_writes_in_a_handful_of_statements(make_app, pool_wheel):
    site, wheel = pool_wheel
    client = make_app(CONFIG_CACHE_TTL_S=60.0).test_client()  # the site config kept, as served
    assert decide(client, site).status_code == 200
    with statements_sent() as sent:
        won = spin(client, site, wheel["id"])
    assert won.status_code == 200, won.json
    assert won.json["code"] in {"CODE-A", "CODE-B"}
    sql = [s.sql for s in sent]
    # Reads, then the assignment's exposure read under the lock (SQLite: the writer lock taken
    # by the one write just before it), then only writes.
    locked = next(i for i, s in enumerate(sql) if "first_impression_at" in s)
    before, after = sql[:locked], sql[locked + 1 :]
    if "FOR UPDATE" not in sql[locked]:  # SQLite
        assert _is_write(before.pop()), "the writer lock is taken right before the read"
    assert not any(_is_write(s) for s in before), before
    assert after and all(_is_write(s) for s in after), after
    assert len(sql) <= 9, sql
    assert not any("FROM variants" in s for s in sql), "the variant comes from the site config"


@pytest.mark.parametrize("impression_first", [True, False], ids=["impression-first", "spin-first"])
def test_the_spin_conversion_counts_once_whichever_is_applied_first(
    client, monkeypatch, app, pool_wheel, impression_first
):
    monkeypatch.setitem(app.config, "EVENTS_APPLY_INLINE", False)
    site, wheel = pool_wheel
    variant_id = wheel["variants"][0]["id"]
    assert decide(client, site).status_code == 200
    impression = event("impression", "visitor-0001", wheel["id"], variant_id)
    assert send_events(client, site, [impression]).status_code == 202
    if impression_first:
        applier.apply_all()
    assert spin(client, site, wheel["id"]).status_code == 200
    applier.apply_all()
    figures = campaign_figures(wheel["id"], "spin")[variant_id]
    assert (figures.visitors, figures.conversions) == (1, 1)
    assert db.session.scalar(select(func.count()).select_from(MetricConversion)) == 1


def test_a_spin_waits_for_the_sqlite_writer_lock_then_wins(client, pool_wheel, database_url):
    """Another writer holds SQLite's lock: the spin waits (cooperatively) and completes after."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's one writer lock; PostgreSQL locks rows")
    site, wheel = pool_wheel
    assert decide(client, site).status_code == 200
    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Timer(0.3, holder.commit)
    released.start()
    try:
        won = spin(client, site, wheel["id"])
    finally:
        released.join()
        holder.close()
    assert won.status_code == 200, won.json
    assert won.json["code"] in {"CODE-A", "CODE-B"}
    assert db.session.scalar(select(func.count()).select_from(Spin)) == 1
    assert db.session.scalar(select(func.count()).where(CouponCode.status == "assigned")) == 1


def test_a_spin_that_loses_the_race_to_its_twin_gives_its_code_back(client, pool_wheel):
    """Two spins of one visitor both pass the repeat check; the second's insert finds the first's
    row: it rolls back, the code it had taken included, and answers the first spin."""
    from widget_server.services.rewards import spin as spin_service

    site, wheel = pool_wheel
    assert decide(client, site).status_code == 200
    real_spin_of = spin_service._spin_of
    calls = {"n": 0}

    def twin_spins_first(campaign_id, visitor_id):
        calls["n"] += 1
        if calls["n"] == 1:  # the repeat check: the twin spins right after it
            found = real_spin_of(campaign_id, visitor_id)
            assert found is None
            twin = client.application.test_client()
            assert spin(twin, site, wheel["id"]).status_code == 200
            return None
        return real_spin_of(campaign_id, visitor_id)

    spin_service._spin_of = twin_spins_first
    try:
        again = spin(client, site, wheel["id"])
    finally:
        spin_service._spin_of = real_spin_of
    assert again.status_code == 200, again.json
    assert again.json["repeated"] is True
    assert db.session.scalar(select(func.count()).select_from(Spin)) == 1
    assert db.session.scalar(select(func.count()).where(CouponCode.status == "assigned")) == 1
