"""Concurrent spins against a running HTTP server: no code twice, one result per visitor.

The app is served by werkzeug's threaded server on the test's database (PostgreSQL and SQLite),
and the requests come from as many OS threads released at once by a barrier.
"""

import json
import threading
import urllib.error
import urllib.request

import pytest
from sqlalchemy import create_engine, func, insert, select, text

from tests.helpers import serving_app
from tests.rewards.conftest import pool_slice, slice_
from widget_server.extensions import db
from widget_server.models import Assignment, CouponCode, Spin, Visitor
from widget_server.models.types import utcnow
from widget_server.services.rewards.spin import allocate_code


@pytest.fixture
def served(make_app):
    """The app over HTTP on 127.0.0.1 (threaded) on the test's database; yields its base URL.

    A threaded server runs every request at once, unlike gunicorn's workers, so its pool is
    sized for the burst: 20 connections that requests queue for (no 503 on a slow machine).
    """
    served_app = make_app(DB_POOL_SIZE=20, DB_MAX_OVERFLOW=0, DB_POOL_TIMEOUT_S=120)
    with serving_app(served_app) as server:
        yield f"http://127.0.0.1:{server.server_port}"


def assign(campaign: dict, visitor_keys: list[str]) -> None:
    """What decide leaves behind for these visitors: a visitor row and a sticky assignment."""
    now = utcnow()
    site_id, variant_id = campaign["site_id"], campaign["variants"][0]["id"]
    db.session.execute(
        insert(Visitor),
        [
            {
                "site_id": site_id,
                "visitor_key": key,
                "attributes": {},
                "scores": {},
                "first_seen_at": now,
                "last_seen_at": now,
            }
            for key in visitor_keys
        ],
    )
    ids = db.session.scalars(select(Visitor.id).where(Visitor.visitor_key.in_(visitor_keys)))
    db.session.execute(
        insert(Assignment),
        [{"campaign_id": campaign["id"], "visitor_id": i, "variant_id": variant_id} for i in ids],
    )
    db.session.commit()


def spin_all(base_url: str, site: dict, campaign_id: int, visitor_keys: list[str]) -> list:
    """POST one spin per key, all threads released together; ``(status, body)`` per request."""
    barrier = threading.Barrier(len(visitor_keys))
    results: list = [None] * len(visitor_keys)
    url = f"{base_url}/api/v1/sites/{site['site_key']}/spin"

    def run(index: int, key: str) -> None:
        body = json.dumps({"visitor_id": key, "campaign_id": campaign_id}).encode()
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "text/plain", "Origin": site["origin"]}
        )
        barrier.wait()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                results[index] = (response.status, json.loads(response.read()))
        except urllib.error.HTTPError as err:
            results[index] = (err.code, json.loads(err.read()))

    threads = [threading.Thread(target=run, args=(i, k)) for i, k in enumerate(visitor_keys)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@pytest.fixture
def fifty_code_wheel(make_site, make_pool, make_wheel):
    site = make_site()
    site["origin"] = "https://shop.example"
    pool = make_pool(site, generate=50, prefix="RACE-")
    wheel = make_wheel(site, [pool_slice("20% off", 1, pool["id"]), slice_("No prize", 0)])
    return site, wheel


def test_200_concurrent_spins_share_50_codes_and_150_fallbacks(served, fifty_code_wheel):
    site, wheel = fifty_code_wheel
    keys = [f"racer-{i:04d}" for i in range(200)]
    assign(wheel, keys)

    results = spin_all(served, site, wheel["id"], keys)

    assert [status for status, _ in results] == [200] * 200, results
    codes = [body["code"] for _, body in results if body["code"] is not None]
    assert len(codes) == 50
    assert len(set(codes)) == 50
    fallbacks = [body for _, body in results if body["code"] is None]
    assert len(fallbacks) == 150
    assert {(b["slice_index"], b["label"]) for b in fallbacks} == {(1, "No prize")}
    assigned = db.session.execute(
        select(CouponCode.code, CouponCode.visitor_id).where(CouponCode.status == "assigned")
    ).all()
    assert sorted(code for code, _ in assigned) == sorted(codes)
    assert len({visitor for _, visitor in assigned}) == 50
    assert db.session.scalar(select(func.count()).select_from(Spin)) == 200
    stored = db.session.scalars(select(Spin.code).where(Spin.code.is_not(None))).all()
    assert sorted(stored) == sorted(codes)


def test_20_concurrent_spins_by_one_visitor_give_one_result(served, fifty_code_wheel):
    site, wheel = fifty_code_wheel
    assign(wheel, ["lonely-visitor"])

    results = spin_all(served, site, wheel["id"], ["lonely-visitor"] * 20)

    assert [status for status, _ in results] == [200] * 20, results
    outcomes = {(body["slice_index"], body["code"]) for _, body in results}
    assert len(outcomes) == 1
    assert next(iter(outcomes))[1] is not None
    assert sum(1 for _, body in results if not body["repeated"]) == 1
    assert db.session.scalar(select(func.count()).select_from(Spin)) == 1
    taken = select(func.count()).where(CouponCode.status != "available")
    assert db.session.scalar(taken) == 1


def test_a_code_locked_by_another_spin_is_skipped_not_waited_for(
    database_url, make_site, make_pool, make_wheel
):
    """PostgreSQL: ``FOR UPDATE SKIP LOCKED`` takes the next free code at once while another
    transaction holds the first (without it this spin would wait, and time out after 2 s)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: there is no row lock to skip")
    site = make_site()
    pool = make_pool(site, codes=["LOCKED-1", "FREE-2"])
    wheel = make_wheel(site, [pool_slice("10% off", 1, pool["id"]), slice_("No prize", 0)])
    assign(wheel, ["skipper-0001"])
    visitor_id = db.session.scalar(select(Visitor.id).where(Visitor.visitor_key == "skipper-0001"))
    other = create_engine(database_url)
    try:
        with other.connect() as holder, holder.begin():
            holder.execute(text("SELECT id FROM coupon_codes WHERE code = 'LOCKED-1' FOR UPDATE"))
            db.session.execute(text("SET LOCAL lock_timeout = '2s'"))
            taken = allocate_code(
                pool["id"], wheel["id"], wheel["variants"][0]["id"], visitor_id, utcnow()
            )
            assert taken is not None and taken[1] == "FREE-2"
            db.session.commit()
    finally:
        other.dispose()
    statuses = dict(db.session.execute(select(CouponCode.code, CouponCode.status)).all())
    assert statuses == {"LOCKED-1": "available", "FREE-2": "assigned"}
