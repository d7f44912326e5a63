"""events: idempotent batches folded into responses, clear errors for bad batches."""

import json

import pytest
from sqlalchemy import func, select

from tests.helpers import decide, event, post_public, send_events
from widget_server.extensions import db
from widget_server.models import Assignment, Event, Response


@pytest.fixture
def running(client, make_site, make_campaign):
    """A running survey that decide has offered ``visitor-0001`` (so it holds an assignment)."""
    site = make_site()
    campaign = make_campaign(site)
    assert decide(client, site, "visitor-0001").json["campaigns"]
    return site, campaign["id"], campaign["variants"][0]["id"]


def test_same_batch_twice_is_stored_once(client, running):
    site, campaign_id, variant_id = running
    batch = [
        event("impression", "visitor-0001", campaign_id, variant_id),
        event("answer", "visitor-0001", campaign_id, variant_id, step_id="q1", value="friend"),
    ]
    first = send_events(client, site, batch)
    assert first.status_code == 202
    assert first.json == {"accepted": 2, "duplicates": 0}
    second = send_events(client, site, batch)
    assert second.status_code == 202
    assert second.json == {"accepted": 0, "duplicates": 2}
    assert db.session.scalar(select(func.count()).select_from(Event)) == 2
    assert db.session.scalar(select(Assignment.impressions)) == 1


def test_same_id_twice_in_one_batch_counts_one_duplicate(client, running):
    site, campaign_id, variant_id = running
    one = event("impression", "visitor-0001", campaign_id, variant_id)
    response = send_events(client, site, [one, one])
    assert response.json == {"accepted": 1, "duplicates": 1}


def test_answers_fold_into_the_visitors_response(client, running):
    site, campaign_id, variant_id = running
    send_events(
        client,
        site,
        [
            event("answer", "visitor-0001", campaign_id, variant_id, step_id="q1", value="search"),
            event("answer", "visitor-0001", campaign_id, variant_id, step_id="q2", value=4),
        ],
    )
    send_events(client, site, [event("complete", "visitor-0001", campaign_id, variant_id)])
    response = db.session.scalar(select(Response))
    assert {k: v["value"] for k, v in response.answers.items()} == {"q1": "search", "q2": 4}
    assert response.completed and response.completed_at
    assert response.variant_id == variant_id


def test_latest_answer_to_a_step_wins_even_out_of_order(client, running):
    site, campaign_id, variant_id = running
    later = event("answer", "visitor-0001", campaign_id, variant_id, step_id="q2", value=5)
    later["ts"] = "2026-01-01T10:00:05Z"
    earlier = event("answer", "visitor-0001", campaign_id, variant_id, step_id="q2", value=2)
    earlier["ts"] = "2026-01-01T10:00:00Z"
    send_events(client, site, [later])
    send_events(client, site, [earlier])
    assert db.session.scalar(select(Response)).answers["q2"]["value"] == 5


def test_event_for_another_sites_campaign_is_refused(client, make_site, make_campaign, running):
    site, _, _ = running
    other = make_site(name="Other")
    foreign = make_campaign(other)
    response = send_events(
        client,
        site,
        [event("impression", "visitor-0001", foreign["id"], foreign["variants"][0]["id"])],
    )
    assert response.status_code == 400
    assert "events.0.campaign_id" in response.json["error"]["fields"]
    assert db.session.scalar(select(func.count()).select_from(Event)) == 0


def test_variant_of_another_campaign_is_refused(client, make_campaign, running):
    site, campaign_id, _ = running
    other = make_campaign(site, name="Other")
    response = send_events(
        client, site, [event("impression", "visitor-0001", campaign_id, other["variants"][0]["id"])]
    )
    assert response.status_code == 400
    assert "events.0.variant_id" in response.json["error"]["fields"]


@pytest.mark.parametrize("forged", ["campaign", "variant"])
def test_ids_that_exist_nowhere_are_refused_and_nothing_is_stored(client, running, forged):
    """The events table has no foreign keys: the endpoint is what keeps a forged id out."""
    site, campaign_id, variant_id = running
    named = {"campaign": (2**31 - 1, variant_id), "variant": (campaign_id, 2**31 - 1)}[forged]
    response = send_events(client, site, [event("impression", "visitor-forged", *named)])
    assert response.status_code == 400
    assert f"events.0.{forged}_id" in response.json["error"]["fields"]
    assert db.session.scalar(select(func.count()).select_from(Event)) == 0


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.pop("id"), "events.0.id"),
        (lambda e: e.update(type="teleport"), "events.0.type"),
        (lambda e: e.update(campaign_id=None), "events.0.campaign_id"),
        (lambda e: e.update(campaign_id="3"), "events.0.campaign_id"),
        (lambda e: e.update(ts="yesterday"), "events.0.ts"),
        (lambda e: e.update(data={"value": 3}), "events.0.data.step_id"),
        (lambda e: e.update(data={"step_id": "q1"}), "events.0.data.value"),
        (lambda e: e.update(data={"step_id": "q1", "value": {"x": 1}}), "events.0.data.value"),
        (lambda e: e.update(visitor_id="x"), "events.0.visitor_id"),
    ],
)
def test_malformed_events_answer_400_naming_the_field(client, running, mutate, field):
    site, campaign_id, variant_id = running
    bad = event("answer", "visitor-0001", campaign_id, variant_id, step_id="q1", value="a")
    mutate(bad)
    response = send_events(client, site, [bad])
    assert response.status_code == 400
    assert field in response.json["error"]["fields"], response.json


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("{}", "events"),
        ('{"events": []}', "events"),
        ('{"events": {}}', "events"),
        ("nope", "_schema"),
    ],
)
def test_malformed_batches_answer_400(client, running, raw, field):
    site, _, _ = running
    response = post_public(client, site, "events", None, raw=raw)
    assert response.status_code == 400
    assert field in response.json["error"]["fields"]


def test_more_than_100_events_is_refused(client, running):
    site, campaign_id, variant_id = running
    batch = [event("step", "visitor-0001", campaign_id, variant_id, step_id="q1")] * 101
    assert send_events(client, site, batch).status_code == 400


def test_event_over_32_kb_answers_413(client, running):
    site, campaign_id, variant_id = running
    big = event("convert", "visitor-0001", name="x", blob="y" * 33_000)
    response = send_events(client, site, [big])
    assert response.status_code == 413
    assert "events.0" in response.json["error"]["fields"]


def test_batch_over_500_kb_answers_413(client, running):
    site, _, _ = running
    raw = json.dumps(
        {"events": [event("convert", "visitor-0001", name="x", b="y" * 30_000) for _ in range(20)]}
    )
    response = post_public(client, site, "events", None, raw=raw)
    assert response.status_code == 413
    assert response.json["error"]["code"] == "request_entity_too_large"


def test_custom_goal_without_campaign_is_stored(client, running):
    site, _, _ = running
    response = send_events(client, site, [event("convert", "visitor-0001", name="newsletter")])
    assert response.json == {"accepted": 1, "duplicates": 0}
