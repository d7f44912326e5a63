"""The public API reads a body with orjson, and with the standard library what orjson refuses:
every body reads as the standard library alone read it, or is refused as it refused it."""

import json

from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import func, select

from widget_server.extensions import db
from widget_server.models import Event
from widget_server.schemas.common import _loads, _not_json

_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def standard(raw: bytes):
    return json.loads(raw, parse_constant=_not_json)


def same_reading(raw: bytes) -> None:
    try:
        expected = standard(raw)
    except (ValueError, RecursionError) as error:
        refused = type(error)
        try:
            _loads(raw)
        except refused:
            return
        raise AssertionError(f"{raw!r}: read, where the standard library refused it") from None
    assert _loads(raw) == expected
    assert json.dumps(_loads(raw)) == json.dumps(expected)  # the same types: 1.0 stays a float


@given(_VALUES, st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
def test_any_json_document_reads_as_the_standard_library_reads_it(value, encoding):
    same_reading(json.dumps(value, ensure_ascii=False).encode(encoding, "surrogatepass"))


@given(st.binary(max_size=64))
@example(b'{"a": NaN}')
@example(b"[Infinity]")
@example(b"[-Infinity]")
@example(b'"\\ud800"')  # a lone surrogate, escaped
@example(b"[1e400]")
@example(b"[" * 5000)
@example(b"\xef\xbb\xbf{}")  # a byte-order mark
@example(b'{"a": 1, "a": 2}')
@example(b"[18446744073709551617]")  # past 64 bits: orjson would read a float
@example(b"[-9223372036854775809]")
def test_any_bytes_read_or_are_refused_as_the_standard_library_does(raw):
    same_reading(raw)


def test_a_batch_holding_nan_is_refused_and_nothing_is_stored(client, make_site):
    site = make_site()
    body = (
        b'{"events": [{"id": "e-000001", "type": "convert", "visitor_id": "visitor-1",'
        b' "data": {"name": "x", "value": NaN}}]}'
    )
    answer = client.post(
        f"/api/v1/sites/{site['site_key']}/events",
        data=body,
        headers={"Origin": "https://shop.example", "Content-Type": "text/plain"},
    )
    assert answer.status_code == 400
    assert answer.json["error"]["fields"] == {"_schema": ["Not valid JSON."]}
    assert db.session.scalar(select(func.count()).select_from(Event)) == 0
