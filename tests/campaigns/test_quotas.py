"""Quotas that never overshoot: ``frequency.max_responses`` counts completed responses under the
campaign's lock, and the survey completes (offered to no one) once it is full; an answer quota
(``frequency.answer_quotas``) completes it once that many respondents chose the option."""

import threading

import pytest
from sqlalchemy import func, select

from tests.helpers import decide, event, send_events
from widget_server.extensions import db
from widget_server.models import Campaign, Response
from widget_server.services.ingest import applier


def _complete(client, site, campaign, visitors, choice="friend"):
    """Each visitor is offered the survey (decide assigns them), answers and completes it."""
    variant_id = campaign["variants"][0]["id"]
    events = []
    for visitor in visitors:
        decide(client, site, visitor)
        events += [
            event("impression", visitor, campaign["id"], variant_id),
            event("answer", visitor, campaign["id"], variant_id, step_id="q1", value=choice),
            event("complete", visitor, campaign["id"], variant_id),
        ]
    for start in range(0, len(events), 50):  # the endpoint's batch limit
        answer = send_events(client, site, events[start : start + 50])
        assert answer.status_code == 202, answer.json


def _responses(campaign) -> tuple[int, int]:
    """(completed, partial) responses of the campaign."""
    db.session.expire_all()
    rows = db.session.execute(
        select(Response.completed, func.count())
        .where(Response.campaign_id == campaign["id"])
        .group_by(Response.completed)
    ).all()
    counts = dict(rows)
    return counts.get(True, 0), counts.get(False, 0)


def _status(campaign) -> str:
    db.session.expire_all()
    return db.session.scalar(select(Campaign.status).where(Campaign.id == campaign["id"]))


def _offered(client, site, visitor) -> list[int]:
    return [offer["campaign_id"] for offer in decide(client, site, visitor).json["campaigns"]]


def test_fifty_completions_against_a_quota_of_twenty_count_twenty_and_end_the_survey(
    client, make_site, make_campaign
):
    site = make_site()
    campaign = make_campaign(site, frequency={"max_responses": 20})
    visitors = [f"visitor-{n:04d}" for n in range(50)]
    for visitor in visitors:  # all of them were offered it before any completed
        assert _offered(client, site, visitor) == [campaign["id"]]
    _complete(client, site, campaign, visitors)
    assert _responses(campaign) == (20, 30)  # the late 30 keep their answers, as partial
    assert _status(campaign) == "completed"
    assert _offered(client, site, "visitor-late") == []


def test_two_appliers_racing_on_the_same_quota_never_overshoot(
    app, client, monkeypatch, make_site, make_campaign
):
    """The completions are stored first, then two appliers fold them in small chunks at once."""
    monkeypatch.setitem(app.config, "EVENTS_APPLY_INLINE", False)
    site = make_site()
    campaign = make_campaign(site, frequency={"max_responses": 20})
    visitors = [f"visitor-{n:04d}" for n in range(50)]
    for visitor in visitors:
        decide(client, site, visitor)
    _complete(client, site, campaign, visitors)
    start = threading.Barrier(2)
    failures = []

    def run_applier():
        with app.app_context():
            try:
                start.wait()
                applier.apply_all(chunk=9)
            except Exception as error:  # reported below, not lost in the thread
                failures.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run_applier) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    applier.apply_all()
    assert _responses(campaign) == (20, 30)
    assert _status(campaign) == "completed"


def test_a_quota_not_reached_leaves_the_survey_running(client, make_site, make_campaign):
    site = make_site()
    campaign = make_campaign(site, frequency={"max_responses": 20})
    _complete(client, site, campaign, [f"visitor-{n:04d}" for n in range(19)])
    assert _responses(campaign) == (19, 0)
    assert _status(campaign) == "running"
    assert _offered(client, site, "visitor-next") == [campaign["id"]]


@pytest.mark.parametrize(("chose", "status"), [(3, "completed"), (2, "running")])
def test_an_answer_quota_ends_the_survey_once_that_many_chose_the_option(
    client, make_site, make_campaign, chose, status
):
    site = make_site()
    quota = {"step_id": "q1", "option_id": "friend", "max": 3}
    campaign = make_campaign(site, frequency={"answer_quotas": [quota]})
    _complete(client, site, campaign, [f"friend-{n}" for n in range(chose)], choice="friend")
    _complete(client, site, campaign, [f"search-{n}" for n in range(4)], choice="search")
    assert _status(campaign) == status
    assert _offered(client, site, "visitor-next") == (
        [] if status == "completed" else [campaign["id"]]
    )


@pytest.mark.parametrize(
    ("frequency", "field"),
    [
        ({"max_responses": 0}, "frequency.max_responses"),
        ({"max_responses": "many"}, "frequency.max_responses"),
        ({"answer_quotas": [{"step_id": "q1", "max": 3}]}, "frequency.answer_quotas.0.option_id"),
        (
            {"answer_quotas": [{"step_id": "q1", "option_id": "a", "max": 0}]},
            "frequency.answer_quotas.0.max",
        ),
        ({"answer_quotas": "price"}, "frequency.answer_quotas"),
    ],
)
def test_bad_quota_settings_are_a_400_naming_the_field(admin, make_site, frequency, field):
    site = make_site()
    body = {"name": "Quota", "kind": "survey", "frequency": frequency}
    answer = admin.post(f"/api/v1/admin/sites/{site['id']}/campaigns", json=body)
    assert answer.status_code == 400
    assert field in answer.json["error"]["fields"], answer.json
