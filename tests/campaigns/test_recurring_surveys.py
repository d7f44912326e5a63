"""Recurring surveys (``frequency.repeat_after_days``): a completed survey is shown again after
that many days, and the visitor's answers then go to a new round of their response. Tested with
aged data (``time_passes``), and with a browser that tries to open a round early."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.helpers import decide, event, send_events, time_passes
from widget_server.extensions import db
from widget_server.models import Response, Visitor

QUARTER = {"repeat_after_days": 90}


def _offered(client, site, visitor="visitor-0001") -> list[int]:
    answer = decide(client, site, visitor)
    assert answer.status_code == 200, answer.json
    return [offer["campaign_id"] for offer in answer.json["campaigns"]]


def _answer_and_complete(client, site, campaign, score, visitor="visitor-0001", ts=None):
    variant_id = campaign["variants"][0]["id"]
    extra = {"ts": ts} if ts else {}
    events = [
        {**event("impression", visitor, campaign["id"], variant_id)},
        {
            **event("answer", visitor, campaign["id"], variant_id, step_id="q2", value=score),
            **extra,
        },
        {**event("complete", visitor, campaign["id"], variant_id)},
    ]
    for sent in events:
        sent.update(extra)
    answer = send_events(client, site, events)
    assert answer.status_code == 202, answer.json


def _rounds(visitor="visitor-0001") -> list[tuple[int, bool, dict]]:
    db.session.expire_all()
    rows = db.session.execute(
        select(Response.round, Response.completed, Response.answers)
        .join(Visitor, Visitor.id == Response.visitor_id)
        .where(Visitor.visitor_key == visitor)
        .order_by(Response.round)
    ).all()
    return [
        (r, completed, {k: v["value"] for k, v in answers.items()})
        for r, completed, answers in rows
    ]


def test_a_recurring_survey_is_shown_again_after_its_days_and_not_before(
    client, make_site, make_campaign
):
    site = make_site()
    campaign = make_campaign(site, frequency=QUARTER)
    assert _offered(client, site) == [campaign["id"]]
    _answer_and_complete(client, site, campaign, 3)
    assert _offered(client, site) == []
    time_passes(timedelta(days=89))
    assert _offered(client, site) == []
    time_passes(timedelta(days=2))
    assert _offered(client, site) == [campaign["id"]]


def test_without_the_setting_a_completed_survey_never_comes_back(client, make_site, make_campaign):
    site = make_site()
    campaign = make_campaign(site)
    _offered(client, site)
    _answer_and_complete(client, site, campaign, 3)
    time_passes(timedelta(days=400))
    assert _offered(client, site) == []


def test_the_next_round_is_a_new_response_and_the_first_is_kept(client, make_site, make_campaign):
    site = make_site()
    campaign = make_campaign(site, frequency=QUARTER)
    _offered(client, site)
    _answer_and_complete(client, site, campaign, 2)
    time_passes(timedelta(days=91))
    assert _offered(client, site) == [campaign["id"]]
    _answer_and_complete(client, site, campaign, 5)
    assert _rounds() == [(1, True, {"q2": 2}), (2, True, {"q2": 5})]
    # The funnel scores the latest round's answer; the survey waits 90 days from the new completion.
    db.session.expire_all()
    visitor = db.session.scalar(select(Visitor).where(Visitor.visitor_key == "visitor-0001"))
    assert visitor.scores == {"intentional": 5.0}
    assert _offered(client, site) == []


def test_answers_right_after_a_completion_stay_in_the_round_however_the_browser_dates_them(
    client, make_site, make_campaign
):
    """A browser cannot open a round early: a timestamp in the future is cut to the arrival."""
    site = make_site()
    campaign = make_campaign(site, frequency=QUARTER)
    _offered(client, site)
    _answer_and_complete(client, site, campaign, 2)
    future = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    _answer_and_complete(client, site, campaign, 5, ts=future)
    assert [(number, completed) for number, completed, _ in _rounds()] == [(1, True)]
    assert _offered(client, site) == []


@pytest.mark.parametrize("bad", [0, 0.5, 3651, "soon", None])
def test_repeat_after_days_out_of_bounds_is_a_400_naming_it(admin, make_site, bad):
    site = make_site()
    body = {"name": "NPS", "kind": "survey", "frequency": {"repeat_after_days": bad}}
    answer = admin.post(f"/api/v1/admin/sites/{site['id']}/campaigns", json=body)
    assert answer.status_code == 400
    assert "frequency.repeat_after_days" in str(answer.json["error"]["fields"])
