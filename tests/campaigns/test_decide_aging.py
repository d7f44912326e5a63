"""decide with aged data: every branch that depends on time, run against rows as old as real
visitors' rows get (``tests.helpers.time_passes``), not only rows written a moment ago."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.helpers import decide, event, send_events, time_passes
from widget_server.extensions import db
from widget_server.models import Visitor


def stored_visitor(key="visitor-0001") -> Visitor:
    db.session.expire_all()
    return db.session.scalar(select(Visitor).where(Visitor.visitor_key == key))


@pytest.mark.parametrize("away", [timedelta(minutes=10), timedelta(days=40)])
def test_returning_visitor_last_seen_long_ago_is_answered_and_touched(
    client, make_site, make_campaign, away
):
    """Regression: the last-seen touch bound a parameter named ``id`` (500 on both databases)."""
    site = make_site()
    campaign = make_campaign(site)
    assert decide(client, site).status_code == 200
    time_passes(away)
    before = stored_visitor().last_seen_at
    response = decide(client, site)
    assert response.status_code == 200, response.json
    assert [c["campaign_id"] for c in response.json["campaigns"]] == [campaign["id"]]
    assert stored_visitor().last_seen_at - before >= away - timedelta(seconds=5)


def test_visitor_seen_minutes_ago_is_not_written_again(client, make_site, make_campaign):
    site = make_site()
    make_campaign(site)
    decide(client, site)
    time_passes(timedelta(minutes=4))
    before = stored_visitor().last_seen_at
    assert decide(client, site).status_code == 200
    assert stored_visitor().last_seen_at == before


@pytest.mark.parametrize(
    ("age", "offered"),
    [(timedelta(minutes=29), "new"), (timedelta(minutes=31), "returning")],
)
def test_new_visitor_window_ends_thirty_minutes_after_first_decide(
    client, make_site, make_campaign, age, offered
):
    site = make_site()
    campaigns = {
        "new": make_campaign(site, name="new", targeting={"visitor": "new"})["id"],
        "returning": make_campaign(site, name="back", targeting={"visitor": "returning"})["id"],
    }
    assert [c["campaign_id"] for c in decide(client, site).json["campaigns"]] == [campaigns["new"]]
    time_passes(age)
    answer = decide(client, site).json["campaigns"]
    assert [c["campaign_id"] for c in answer] == [campaigns[offered]]


@pytest.mark.parametrize(("hours", "offered"), [(11.9, False), (12.1, True)])
def test_site_cooldown_holds_until_its_hours_have_passed(
    client, make_site, make_campaign, hours, offered
):
    site = make_site(cooldown_hours=12)
    first = make_campaign(site, name="first", frequency={"days_after_close": 0})
    second = make_campaign(site, name="second")
    assert decide(client, site).json["campaigns"]
    send_events(
        client, site, [event("close", "visitor-0001", first["id"], first["variants"][0]["id"])]
    )
    time_passes(timedelta(hours=hours))
    answer = decide(client, site, debug=True).json
    assert bool(answer["campaigns"]) is offered
    if offered:
        assert second["id"] in [c["campaign_id"] for c in answer["campaigns"]]
    else:
        assert all("cooldown" in s["reason"] for s in answer["skipped"])


@pytest.mark.parametrize(("days", "offered"), [(2.9, False), (3.1, True)])
def test_closed_campaign_returns_after_days_after_close(
    client, make_site, make_campaign, days, offered
):
    site = make_site()
    campaign = make_campaign(site, frequency={"days_after_close": 3})
    assert decide(client, site).json["campaigns"]
    send_events(
        client,
        site,
        [event("close", "visitor-0001", campaign["id"], campaign["variants"][0]["id"])],
    )
    time_passes(timedelta(days=days))
    answer = decide(client, site, debug=True).json
    assert bool(answer["campaigns"]) is offered
    if not offered:
        assert "closed less than 3 days ago" in answer["skipped"][0]["reason"]
