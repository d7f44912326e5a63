"""A spin worth money sees what the visitor just did: the survey completed a moment ago earns
its reward wheel although the applier has not folded the completion yet."""

from sqlalchemy import func, select

from tests.api.helpers import decide, event, send_events
from tests.conftest import survey_content
from tests.rewards.conftest import pool_slice, slice_
from tests.rewards.helpers import spin
from widget_server.extensions import db
from widget_server.models import Event


def test_the_reward_wheel_spins_right_after_the_survey_is_completed(
    app, client, make_site, make_pool, make_wheel, make_campaign, monkeypatch
):
    monkeypatch.setitem(app.config, "EVENTS_APPLY_INLINE", False)
    site = make_site()
    pool = make_pool(site, codes=["LAG-1"])
    wheel = make_wheel(
        site,
        [pool_slice("10% off", 1, pool["id"]), slice_("No", 0, color="#000000")],
        targeting={"url_include": ["/cart*"]},
    )
    reward = {"campaign_id": wheel["id"], "label": "Spin"}
    content = survey_content(thank_you={"title": "Thanks!", "reward": reward})
    survey = make_campaign(site, variants=[{"name": "A", "is_control": True, "content": content}])
    decide(client, site, "visitor-earner")
    assert spin(client, site, wheel["id"], "visitor-earner").status_code == 409
    complete = event("complete", "visitor-earner", survey["id"], survey["variants"][0]["id"])
    assert send_events(client, site, [complete]).status_code == 202
    assert db.session.scalar(select(func.count()).where(Event.pending)) == 1

    won = spin(client, site, wheel["id"], "visitor-earner")

    assert won.status_code == 200, won.json
    assert won.json["code"] == "LAG-1"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).where(Event.pending)) == 0


def test_a_spin_without_the_survey_completed_stays_refused_with_events_pending(
    app, client, make_site, make_pool, make_wheel, make_campaign, monkeypatch
):
    monkeypatch.setitem(app.config, "EVENTS_APPLY_INLINE", False)
    site = make_site()
    pool = make_pool(site, codes=["LAG-2"])
    wheel = make_wheel(
        site,
        [pool_slice("10% off", 1, pool["id"]), slice_("No", 0, color="#000000")],
        targeting={"url_include": ["/cart*"]},
    )
    reward = {"campaign_id": wheel["id"], "label": "Spin"}
    content = survey_content(thank_you={"title": "Thanks!", "reward": reward})
    survey = make_campaign(site, variants=[{"name": "A", "is_control": True, "content": content}])
    decide(client, site, "visitor-half-way")
    answer = event(
        "answer",
        "visitor-half-way",
        survey["id"],
        survey["variants"][0]["id"],
        step_id="q1",
        value="search",
    )
    send_events(client, site, [answer])

    assert spin(client, site, wheel["id"], "visitor-half-way").status_code == 409
