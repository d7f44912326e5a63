"""A spin's reads and its code are found by key, however much the wheel has been used.

Every spin asks for the visitor's earlier spin (or the spin of a visitor identify merged into
them) and takes the pool's next available code. PostgreSQL planned both as walks whose length
grew with use: ``visitor_id = :id OR visitor_id IN (merged)`` could only be a filter over every
spin of the wheel (4,000 rows read for one found in a ten-second benchmark), also while a new
wheel's statistics said it had no spin; and the lowest available code was looked for along the
primary key, over every code already handed out.
"""

import pytest
from sqlalchemy import func, select, text

from tests.rewards.conftest import pool_slice, slice_
from widget_server.extensions import db
from widget_server.models import CouponCode, Spin, Visitor
from widget_server.models.types import utcnow
from widget_server.services.rewards import spin as spin_service

SPINS = 3000


@pytest.fixture(params=["statistics of a new wheel", "statistics taken since"])
def busy_wheel(request, make_site, make_wheel):
    """A wheel that has given ``SPINS`` spins, one per visitor; the statistics taken before
    the spins (a new wheel's, until autovacuum takes them again) or after."""
    site = make_site()
    wheel = make_wheel(site, [slice_("No luck", 1)])
    variant_id, now = wheel["variants"][0]["id"], utcnow()
    if request.param == "statistics of a new wheel":
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    db.session.execute(
        Visitor.__table__.insert(),
        [
            {
                "site_id": site["id"],
                "visitor_key": f"spinner-{n:05d}",
                "first_seen_at": now,
                "last_seen_at": now,
            }
            for n in range(SPINS)
        ],
    )
    db.session.execute(
        text(
            "INSERT INTO spins (campaign_id, variant_id, visitor_id, slice_index, label,"
            " created_at) SELECT :wheel, :variant, id, 0, 'No luck', CURRENT_TIMESTAMP"
            " FROM visitors WHERE site_id = :site"
        ),
        {"wheel": wheel["id"], "variant": variant_id, "site": site["id"]},
    )
    db.session.commit()
    if request.param == "statistics taken since":
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    return wheel


def visitor(key: str) -> int:
    return db.session.scalar(select(Visitor.id).where(Visitor.visitor_key == key))


def plan_of(statement, values: dict) -> str:
    """How the database runs ``statement`` for these values (PostgreSQL: run, in the test's
    transaction, with the rows each step read)."""
    compiled = statement.compile(dialect=db.engine.dialect)
    params = compiled.construct_params(values, escape_names=False)
    connection = db.session.connection()
    if db.engine.dialect.name == "postgresql":
        rows = connection.exec_driver_sql(f"EXPLAIN ANALYZE {compiled}", params).all()
        return "\n".join(row[0] for row in rows)
    positional = tuple(params[name] for name in compiled.positiontup)
    rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", positional).all()
    return "\n".join(row[-1] for row in rows)


def the_plan(campaign_id: int, visitor_id: int) -> str:
    """How the database runs the earlier-spin read for these values."""
    statement = spin_service._spin_of_statement(db.engine.dialect.name)
    return plan_of(statement, {"campaign_id": campaign_id, "visitor_id": visitor_id})


def test_the_earlier_spin_is_one_lookup_among_thousands(busy_wheel):
    wheel_id = busy_wheel["id"]
    someone = visitor("spinner-01234")

    found = spin_service._spin_of(wheel_id, someone)

    assert (found.visitor_id, db.session.scalar(select(func.count(Spin.id)))) == (someone, SPINS)
    plan = the_plan(wheel_id, someone)
    if db.engine.dialect.name == "postgresql":
        assert "uq_spins_campaign_visitor" in plan and "Rows Removed" not in plan, plan
    else:
        assert "spins USING INDEX" in plan and "(campaign_id=? AND visitor_id=?)" in plan, plan


def test_a_merged_visitors_spin_is_found_the_same_way(busy_wheel):
    wheel_id = busy_wheel["id"]
    customer, phone = visitor("spinner-00007"), visitor("spinner-00008")
    db.session.execute(Spin.__table__.delete().where(Spin.visitor_id == customer))
    db.session.execute(
        Visitor.__table__.update().where(Visitor.id == phone).values(merged_into_id=customer)
    )
    db.session.commit()

    found = spin_service._spin_of(wheel_id, customer)

    assert found.visitor_id == phone
    assert spin_service._spin_of(wheel_id, visitor("spinner-00009")).visitor_id != phone
    plan = the_plan(wheel_id, customer)
    if db.engine.dialect.name == "postgresql":
        assert "uq_spins_campaign_visitor" in plan and "Rows Removed" not in plan, plan


#: A pool as large as a store's (the benchmark's); the first codes are handed out, most of the
#: pool is left, so the primary key looks like the shortest way to an available code.
POOL, HANDED_OUT = 50_000, 2_000


@pytest.fixture
def used_pool(make_site, make_pool, make_wheel):
    """A pool of ``POOL`` codes whose first ``HANDED_OUT`` are handed out, its wheel and a
    visitor; statistics taken since."""
    site = make_site()
    pool = make_pool(site)
    wheel = make_wheel(site, [pool_slice("10% off", 1, pool["id"]), slice_("No luck", 0)])
    now = utcnow()
    db.session.execute(
        Visitor.__table__.insert(),
        {"site_id": site["id"], "visitor_key": "buyer", "first_seen_at": now, "last_seen_at": now},
    )
    for start in range(0, POOL, 10_000):
        db.session.execute(
            CouponCode.__table__.insert(),
            [
                {
                    "site_id": site["id"],
                    "pool_id": pool["id"],
                    "code": f"CODE-{n:06d}",
                    "status": "assigned" if n < HANDED_OUT else "available",
                    "created_at": now,
                }
                for n in range(start, start + 10_000)
            ],
        )
    db.session.commit()
    db.session.execute(text("ANALYZE"))
    db.session.commit()
    return pool, wheel


def take_code(pool, wheel):
    return spin_service.allocate_code(
        pool["id"], wheel["id"], wheel["variants"][0]["id"], visitor("buyer"), utcnow()
    )


def test_the_next_code_is_read_from_the_available_ones_only(used_pool):
    pool, wheel = used_pool
    first_available = db.session.scalar(
        select(func.min(CouponCode.id)).where(CouponCode.status == "available")
    )

    taken_id, _ = take_code(pool, wheel)
    db.session.rollback()

    assert taken_id == first_available
    statement = spin_service._take_code_statement(db.engine.dialect.name)
    plan = plan_of(
        statement,
        {
            "to_pool_id": pool["id"],
            "to_campaign_id": wheel["id"],
            "to_variant_id": wheel["variants"][0]["id"],
            "to_visitor_id": visitor("buyer"),
            "to_now": utcnow(),
            "to_expires_at": None,
        },
    )
    if db.engine.dialect.name == "postgresql":
        assert "Index Scan using ix_coupon_codes_available" in plan, plan
        assert "Rows Removed by Filter" not in plan, plan
    else:
        # SQLite seeks the pool's available codes by (pool, status), in id order.
        assert "coupon_codes USING" in plan and "(pool_id=? AND status=?)" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
    db.session.rollback()
