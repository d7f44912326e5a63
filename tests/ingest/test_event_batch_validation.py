"""The events endpoint's quick check of a batch against the schema it stands in for.

``quick_load_batch`` loads the batches the snippet sends without marshmallow's field machinery
and hands anything else to :class:`EventBatchSchema`. Whatever it accepts, the schema must load
to exactly the same events: a property test over batches built from valid and invalid parts.
"""

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from tests.helpers import event
from widget_server.schemas.public import EventBatchSchema, quick_load_batch

SCHEMA = EventBatchSchema()

ID_LETTERS = "abcXYZ019_-"
valid_ids = st.one_of(
    st.just("2f1c6f0e-8a55-4d8e-9b0e-0d7a1c2b3e4f"),
    st.text(ID_LETTERS, min_size=8, max_size=64),
)
bad_ids = st.one_of(
    st.text(ID_LETTERS, max_size=7),
    st.text(ID_LETTERS, min_size=65, max_size=70),
    st.sampled_from(["abc12345\n", "has space x", "é" * 10]),
    st.integers(),
    st.none(),
)
KINDS = ["impression", "step", "answer", "complete", "close", "spin", "claim", "convert"]
valid_row_ids = st.one_of(st.none(), st.integers(1, 2**31 - 1))
bad_row_ids = st.one_of(
    st.integers(-2, 0), st.integers(2**31, 2**31 + 2), st.sampled_from([True, 1.0, "3", "٣"])
)
valid_times = st.one_of(
    st.none(),
    st.sampled_from(
        ["2026-12-03T10:00:00.000Z", "2026-12-03T10:00:00+02:00", "2000-01-01T00:00:00Z"]
    ),
)
bad_times = st.one_of(
    st.sampled_from(
        ["2026-12-03T10:00:00", "1999-12-31T23:59:59Z", "20261203T100000Z", "yesterday", ""]
    ),
    st.integers(),
)
values = st.one_of(
    st.text(max_size=8),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(st.text(max_size=4), max_size=3),
    st.lists(st.integers(), max_size=2),
    st.none(),
)
datas = st.fixed_dictionaries(
    {},
    optional={
        "step_id": st.one_of(st.just("q1"), st.sampled_from(["q-2", "bad id", ""]), st.integers()),
        "value": values,
        "name": st.one_of(st.text(max_size=5), st.integers()),
        "extra": st.integers(),
    },
)
bad_datas = st.one_of(st.none(), st.lists(st.integers(), max_size=1), st.text(max_size=3))
MUTATIONS = {
    "id": bad_ids,
    "type": st.one_of(st.sampled_from(["Impression", "click", ""]), st.integers()),
    "visitor_id": bad_ids,
    "campaign_id": bad_row_ids,
    "variant_id": bad_row_ids,
    "ts": bad_times,
    "data": bad_datas,
    "unexpected": st.integers(),
}


CAMPAIGN_KINDS = {"impression", "step", "answer", "complete", "close", "spin", "claim"}
good_values = st.one_of(
    st.text(max_size=8), st.integers(-5, 5), st.lists(st.text(max_size=4), max_size=3)
)


@st.composite
def raw_events(draw):
    """An event as the snippet might send it, then perhaps a part left out or made wrong."""
    kind = draw(st.sampled_from(KINDS))
    in_campaign = kind in CAMPAIGN_KINDS or draw(st.booleans())
    data = {}
    if kind in ("step", "answer", "close"):
        data["step_id"] = "q1"
    if kind == "answer":
        data["value"] = draw(good_values)
    if kind == "convert":
        data["name"] = "purchase"
    data.update(draw(datas) if draw(st.integers(0, 3)) == 0 else {})
    raw = {
        "id": draw(valid_ids),
        "type": kind,
        "visitor_id": draw(valid_ids),
        "campaign_id": draw(st.integers(1, 2**31 - 1)) if in_campaign else None,
        "variant_id": draw(st.integers(1, 2**31 - 1)) if in_campaign else None,
        "ts": draw(valid_times),
        "data": data,
    }
    if draw(st.integers(0, 3)) == 0:
        del raw[draw(st.sampled_from(sorted(raw)))]
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(MUTATIONS)))
        raw[name] = draw(MUTATIONS[name])
    return raw


batches = st.one_of(
    st.fixed_dictionaries(
        {"events": st.lists(raw_events(), max_size=3)}, optional={"other": st.integers()}
    ),
    st.fixed_dictionaries({"events": st.one_of(st.none(), st.text(max_size=2), st.integers())}),
    st.just({"events": [7]}),
)


def _schema_load(payload):
    try:
        return SCHEMA.load(payload)["events"]
    except ValidationError:
        return "refused"


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches)
def test_what_the_quick_check_accepts_the_schema_loads_the_same(payload):
    quick = quick_load_batch(payload)
    if quick is not None:
        assert _schema_load(payload) == quick


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(["impression", "step", "answer", "complete", "close", "convert"]),
        min_size=1,
        max_size=100,
    )
)
def test_every_batch_the_snippet_sends_takes_the_quick_path(kinds):
    """The snippet's events (docs/wire-contract.md): the quick path is the one they take, so the
    endpoint's speed does not rest on the schema."""
    payload = {"events": [_snippet_event(kind) for kind in kinds]}
    quick = quick_load_batch(payload)
    assert quick is not None
    assert quick == SCHEMA.load(payload)["events"]


def _snippet_event(kind: str) -> dict:
    data = {
        "impression": {},
        "step": {"step_id": "q1"},
        "answer": {"step_id": "q1", "value": ["a", "b"]},
        "complete": {},
        "close": {"step_id": "q2"},
        "convert": {"name": "purchase", "value": 25.5},
    }[kind]
    campaign = kind != "convert"
    raw = event(kind, str(uuid.uuid4()), 7 if campaign else None, 9 if campaign else None, **data)
    raw["ts"] = "2026-12-03T10:15:30.123Z"
    return raw


@pytest.mark.parametrize(
    "payload",
    [
        {"events": []},
        {"events": [{**_snippet_event("answer"), "data": {"step_id": "q1"}}]},
        {"events": [{**_snippet_event("step"), "campaign_id": True}]},
        {"events": [{**_snippet_event("step"), "ts": "2026-12-03T10:15:30"}]},
        {"events": [{**_snippet_event("step"), "ts": "1999-12-31T23:59:59.999Z"}]},
        {"events": [{**_snippet_event("step"), "campaign_id": 0}]},
        {"events": [{**_snippet_event("step"), "variant_id": 2**31}]},
        {"events": [{**_snippet_event("step"), "variant_id": "٣"}]},
        {"events": [{**_snippet_event("step"), "visitor_id": "abc12345\n"}]},
        {"events": [_snippet_event("step")] * 101},
        {"events": [_snippet_event("step")], "extra": 1},
    ],
)
def test_a_bad_batch_is_left_to_the_schema(payload):
    assert quick_load_batch(payload) is None
    assert _schema_load(payload) == "refused"
