"""A spin worth money sees what the visitor just did: the survey completed a moment ago earns
its reward wheel although the applier has not folded the completion yet."""

import pytest
from sqlalchemy import func, select

from tests.helpers import decide, event, send_events, survey_content
from tests.rewards.conftest import pool_slice, slice_
from tests.rewards.helpers import spin
from widget_server.extensions import db
from widget_server.models import Event


@pytest.fixture
def survey_and_reward(app, make_site, make_pool, make_wheel, make_campaign, monkeypatch):
    """A survey whose thank-you step offers a wheel of one code, with the applier deferred."""
    monkeypatch.setitem(app.config, "EVENTS_APPLY_INLINE", False)
    site = make_site()
    pool = make_pool(site, codes=["LAG-1"])
    slices = [pool_slice("10% off", 1, pool["id"]), slice_("No", 0, color="#000000")]
    wheel = make_wheel(site, slices, targeting={"url_include": ["/cart*"]})
    reward = {"campaign_id": wheel["id"], "label": "Spin"}
    content = survey_content(thank_you={"title": "Thanks!", "reward": reward})
    survey = make_campaign(site, variants=[{"name": "A", "is_control": True, "content": content}])
    return site, survey, wheel


def pending() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).where(Event.pending))


def test_the_reward_wheel_spins_right_after_the_survey_is_completed(client, survey_and_reward):
    site, survey, wheel = survey_and_reward
    decide(client, site, "visitor-earner")
    assert spin(client, site, wheel["id"], "visitor-earner").status_code == 409
    complete = event("complete", "visitor-earner", survey["id"], survey["variants"][0]["id"])
    assert send_events(client, site, [complete]).status_code == 202
    assert pending() == 1

    won = spin(client, site, wheel["id"], "visitor-earner")

    assert won.status_code == 200, won.json
    assert won.json["code"] == "LAG-1"
    assert pending() == 0


def test_a_spin_without_the_survey_completed_stays_refused_with_events_pending(
    client, survey_and_reward
):
    site, survey, wheel = survey_and_reward
    decide(client, site, "visitor-half-way")
    variant_id = survey["variants"][0]["id"]
    answer = event(
        "answer", "visitor-half-way", survey["id"], variant_id, step_id="q1", value="search"
    )
    send_events(client, site, [answer])

    assert spin(client, site, wheel["id"], "visitor-half-way").status_code == 409
