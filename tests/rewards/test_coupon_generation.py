"""Generating coupon codes: the documented maximum in one request, clashes drawn again alone,
symbols uniform, and a count written with a Unicode digit refused by name (it was a 500)."""

import time
from collections import Counter

import pytest
from scipy import stats
from sqlalchemy import event, select

from widget_server import vocabulary
from widget_server.extensions import db
from widget_server.models import CouponCode
from widget_server.services.rewards import coupons


def generate(admin, pool, **body):
    return admin.post(f"/api/v1/admin/coupon-pools/{pool['id']}/generate", json=body)


def codes_of(pool) -> list[str]:
    return list(db.session.scalars(select(CouponCode.code).where(CouponCode.pool_id == pool["id"])))


@pytest.fixture
def insert_statements():
    """Count the INSERT statements sent to the database while the test runs."""
    seen = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT"):
            seen.append(len(parameters) if executemany else 1)

    event.listen(db.engine, "before_cursor_execute", count)
    yield seen
    event.remove(db.engine, "before_cursor_execute", count)


def test_the_documented_maximum_is_generated_in_one_request(
    admin, make_site, make_pool, insert_statements
):
    pool = make_pool(make_site())
    insert_statements.clear()  # the site's and the pool's
    started = time.monotonic()
    response = generate(admin, pool, count=coupons.MAX_GENERATE, prefix="BIG-")
    elapsed_s = time.monotonic() - started

    assert response.status_code == 201, response.json
    assert response.json["generated"] == 100_000
    assert response.json["pool"]["stock"]["available"] == 100_000
    codes = codes_of(pool)
    assert len(codes) == len(set(codes)) == 100_000
    # Set-based: a handful of statements, not one per code (which took 30 s on PostgreSQL).
    assert sum(insert_statements) <= 10
    # gunicorn kills a worker after 30 s; this machine may be busy with other suites.
    assert elapsed_s < 30


@pytest.mark.parametrize(
    "first_draw",
    [["T-AAAA-AAAA-AAAA"], ["T-BBBB-BBBB-BBBB", "T-BBBB-BBBB-BBBB"]],
    ids=["clash-with-an-existing-code", "clash-within-the-draw"],
)
def test_a_clashing_code_is_skipped_and_only_the_shortfall_drawn_again(
    admin, make_site, make_pool, monkeypatch, first_draw
):
    pool = make_pool(make_site(), codes=["T-AAAA-AAAA-AAAA"])
    real = coupons.random_codes
    asked = []

    def draw(prefix, symbols, count):
        asked.append(count)
        if len(asked) == 1:
            return first_draw + real(prefix, symbols, count - len(first_draw))
        return real(prefix, symbols, count)

    monkeypatch.setattr(coupons, "random_codes", draw)
    response = generate(admin, pool, count=5, prefix="T-")

    assert response.status_code == 201, response.json
    assert response.json["generated"] == 5
    assert asked == [5, 1]
    assert len(set(codes_of(pool))) == 6


def test_generated_symbols_are_uniform_over_the_alphabet():
    codes = coupons.random_codes("", 12, 20_000)
    symbols = Counter("".join(codes).replace("-", ""))
    assert set(symbols) == set(vocabulary.CODE_ALPHABET)
    observed = [symbols[s] for s in vocabulary.CODE_ALPHABET]
    assert stats.chisquare(observed).pvalue > 1e-4


@pytest.mark.parametrize("count", ["²", "٣", "1_000", "1e3", "0x10", ""])
def test_a_count_that_is_not_ascii_digits_is_refused_naming_count(
    admin, make_site, make_pool, count
):
    pool = make_pool(make_site())
    response = generate(admin, pool, count=count)
    assert response.status_code == 400
    assert "count" in response.json["error"]["fields"]
    assert codes_of(pool) == []
