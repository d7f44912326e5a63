"""decide's quick check of a request against the schema it stands in for.

``quick_load_decide`` loads the requests the snippet sends without marshmallow's field machinery
and hands anything else to :class:`DecideSchema`. Whatever it accepts, the schema must load to
exactly the same request: a property test over requests built from valid and invalid parts.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from widget_server.schemas.public import DecideSchema, quick_load_decide

SCHEMA = DecideSchema()
ID_LETTERS = "abcXYZ019_-"

valid = {
    "visitor_id": st.text(ID_LETTERS, min_size=8, max_size=64),
    "url": st.sampled_from(["https://shop.example/", "x", "https://shop.example/p?q=é"]),
    "referrer": st.sampled_from(["", None, "https://search.example/?q=cake"]),
    "page_views": st.integers(0, 5),
    "device": st.sampled_from(["mobile", "tablet", "desktop"]),
    "locale": st.text(max_size=35),
    "debug": st.booleans(),
    "cart": st.fixed_dictionaries(
        {}, optional={"value": st.floats(0, 1e6) | st.integers(0, 9), "items": st.integers(0, 9)}
    ),
}
numbers = st.one_of(
    st.integers(-2, 3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(["2", "1.5", None, 2.0]),
)
wild = {
    "visitor_id": st.one_of(
        st.text(ID_LETTERS, max_size=7),
        st.text(ID_LETTERS, min_size=65, max_size=66),
        st.sampled_from(["abc12345\n", "has space x", "é" * 10]),
        st.integers(),
        st.none(),
    ),
    "url": st.one_of(
        st.sampled_from(["", None, 5]), st.text(min_size=4095, max_size=4098, alphabet="ab")
    ),
    "referrer": st.one_of(st.text(min_size=4095, max_size=4098, alphabet="ab"), st.integers()),
    "page_views": numbers,
    "device": st.sampled_from(["phone", "", None, "Mobile"]),
    "locale": st.one_of(st.text(min_size=34, max_size=37), st.integers(), st.none()),
    "debug": st.sampled_from(["true", 1, 0, None]),
    "cart": st.one_of(
        st.fixed_dictionaries({"value": numbers}),
        st.fixed_dictionaries({"items": numbers}),
        st.fixed_dictionaries({"value": numbers, "items": numbers}),
        st.fixed_dictionaries({"value": numbers, "extra": st.integers()}),
        st.none(),
        st.integers(),
    ),
    "attributes": st.dictionaries(st.sampled_from(["plan", "bad key"]), st.integers()),
    "unknown": st.integers(),
}


@st.composite
def requests(draw):
    """A valid request, with up to two of its fields (or extra ones) given wild values."""
    optional = draw(st.sets(st.sampled_from(sorted(valid.keys() - {"visitor_id", "url"}))))
    request = {name: draw(valid[name]) for name in ("visitor_id", "url", *sorted(optional))}
    for name in draw(st.lists(st.sampled_from(sorted(wild)), max_size=2)):
        request[name] = draw(wild[name])
    return request


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_what_the_quick_check_accepts_the_schema_loads_identically(request):
    quick = quick_load_decide(request)
    try:
        loaded = SCHEMA.load(request)
    except ValidationError:
        assert quick is None, request  # refused by the schema: never let through
        return
    if quick is not None:
        assert quick == loaded
        assert all(type(quick[k]) is type(loaded[k]) for k in loaded)


def test_the_snippets_request_takes_the_quick_path():
    sent = {
        "visitor_id": "2f1c6f0e-8a55-4d8e-9b0e-0d7a1c2b3e4f",
        "url": "https://shop.example/",
        "referrer": "",
        "page_views": 3,
        "cart": {"value": 59.9, "items": 2},
        "locale": "fr-FR",
        "debug": False,
    }
    assert quick_load_decide(sent) == SCHEMA.load(sent)


BASE = {"visitor_id": "2f1c6f0e-8a55-4d8e-9b0e-0d7a1c2b3e4f", "url": "https://shop.example/"}


@pytest.mark.parametrize(
    "field, value",
    [
        ("url", "u" * 4097),
        ("url", ""),
        ("referrer", "r" * 4097),
        ("page_views", -1),
        ("page_views", True),
        ("device", "phone"),
        ("locale", "l" * 36),
        ("cart", {"value": -0.5}),
        ("cart", {"value": float("inf")}),
        ("cart", {"items": -1}),
        ("cart", {"value": True}),
        ("cart", None),
    ],
)
def test_each_bound_is_refused_by_both(field, value):
    request = {**BASE, field: value}
    assert quick_load_decide(request) is None
    with pytest.raises(ValidationError):
        SCHEMA.load(request)


@pytest.mark.parametrize(
    "field, value",
    [("url", "u" * 4096), ("page_views", 0), ("locale", "l" * 35), ("cart", {"value": 0})],
)
def test_each_bound_itself_is_accepted_by_both(field, value):
    request = {**BASE, field: value}
    assert quick_load_decide(request) == SCHEMA.load(request)


@pytest.mark.parametrize(
    "field, value", [("debug", 1), ("cart", {"items": 1.5}), ("page_views", "2")]
)
def test_what_the_schema_coerces_is_left_to_the_schema(field, value):
    assert quick_load_decide({**BASE, field: value}) is None
