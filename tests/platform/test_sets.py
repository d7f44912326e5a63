"""``one_of``: a bulk read's many values as one parameter on PostgreSQL, the same rows as an
``IN`` on both databases, however many values (none included)."""

import pytest
from sqlalchemy import select

from tests.helpers import statements_sent
from widget_server.extensions import db
from widget_server.models import Visitor
from widget_server.models.types import utcnow
from widget_server.services.campaigns import catalog
from widget_server.services.platform.sets import one_of


@pytest.fixture
def visitors(app):
    site = catalog.create_site({"name": "Shop", "allowed_origins": ["https://shop.example"]})
    now = utcnow()
    db.session.add_all(
        Visitor(
            site_id=site.id, visitor_key=f"visitor-{n:04d}", first_seen_at=now, last_seen_at=now
        )
        for n in range(300)
    )
    db.session.commit()
    return site


@pytest.mark.parametrize("count", [0, 1, 7, 250])
def test_one_of_reads_exactly_the_rows_an_in_reads(visitors, count):
    keys = {f"visitor-{n:04d}" for n in range(0, 2 * count, 2)} | {"visitor-absent"}
    query = select(Visitor.visitor_key).where(Visitor.site_id == visitors.id)

    found = set(db.session.scalars(query.where(one_of(Visitor.visitor_key, keys))))

    assert found == set(db.session.scalars(query.where(Visitor.visitor_key.in_(keys))))
    assert found == {key for key in keys if key < "visitor-0300"}  # the 300 stored


def test_on_postgresql_the_values_travel_as_one_parameter(visitors, database_url):
    keys = [f"visitor-{n:04d}" for n in range(250)]
    with statements_sent() as sent:
        db.session.scalars(select(Visitor.id).where(one_of(Visitor.visitor_key, keys))).all()
    [statement] = sent
    if database_url.startswith("postgresql"):
        assert "ANY" in statement.sql.upper()
        assert statement.sql.count("%(") == 1  # not one placeholder per value
    else:
        assert statement.sql.count("?") == 250
