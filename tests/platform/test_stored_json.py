"""Stored JSON reads back as the standard library reads it, NaN included."""

import json
import math
from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql

from widget_server.extensions import db
from widget_server.models import Visitor
from widget_server.services.platform import upsert
from widget_server.services.platform.stored_json import loads

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


@given(_JSON | st.integers())
def test_any_stored_value_reads_back_as_the_standard_library_reads_it(value):
    text = json.dumps(value)
    assert loads(text) == json.loads(text)
    assert json.dumps(loads(text)) == text  # the same types: an integer stays an integer


def test_what_orjson_refuses_is_read_by_the_standard_library():
    assert math.isnan(loads('{"score": NaN}')["score"])
    # Past orjson's 64-bit integers (it reads them as floats): exact, and still integers.
    for big in (2**64 + 1, -(2**63) - 1, 10**30 + 7):
        value = loads(f'{{"n": [{big}]}}')["n"][0]
        assert value == big and type(value) is int


def test_the_database_hands_back_json_through_it(app, make_site):
    site = make_site()
    db.session.add(Visitor(site_id=site["id"], visitor_key="json-1"))
    db.session.commit()
    attributes = {"plan": "gold", "nested": {"n": [1, 2.5, None, True]}, "ü": "é"}
    db.session.execute(update(Visitor).values(attributes=attributes))
    db.session.commit()
    db.session.expire_all()

    assert db.session.scalar(select(Visitor.attributes)) == attributes
    assert db.engine.dialect._json_deserializer is loads


#: Finite numbers: JSON has no Infinity (PostgreSQL refused the standard library's), and the
#: endpoints refuse non-finite numbers before anything is written.
_ROW_VALUE = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text() | st.dates()
    | st.datetimes(timezones=st.just(UTC)) | st.datetimes()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.dictionaries(st.text(), st.text() | st.integers(), max_size=3)
)  # fmt: skip


def _standard_library(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError


@given(st.lists(st.dictionaries(st.sampled_from("abcd"), _ROW_VALUE, min_size=1), max_size=5))
def test_rows_travel_to_postgresql_as_the_standard_library_writes_them(rows):
    """The JSON text PostgreSQL unpacks into rows (``update_rows``, the events' insert) holds the
    values the standard library's ``json.dumps`` wrote before orjson did."""
    written = upsert._rows_as_json(postgresql.dialect(), None, rows)
    assert json.loads(written) == json.loads(json.dumps(rows, default=_standard_library))
