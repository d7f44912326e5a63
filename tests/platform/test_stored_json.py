"""Stored JSON reads back as the standard library reads it, NaN included."""

import json
import math

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

from widget_server.extensions import db
from widget_server.models import Visitor
from widget_server.services.platform.stored_json import loads

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


@given(_JSON)
def test_any_stored_value_reads_back_as_the_standard_library_reads_it(value):
    text = json.dumps(value)
    assert loads(text) == json.loads(text)


def test_what_orjson_refuses_is_read_by_the_standard_library():
    assert math.isnan(loads('{"score": NaN}')["score"])
    assert loads("[18446744073709551616]") == [2**64]  # past orjson's 64-bit integers


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
