"""The teaser (``frequency.teaser``): its settings, decide's tab-only answer within the window
after a close (and not after it, on aged rows), and its events, which count once per visitor
beside the A/B figures and never for a forged reopening."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.helpers import decide, event, send_events, time_passes
from widget_server.extensions import db
from widget_server.models import Assignment, Event

TEASER = {"text": "Get 10% off", "side": "left", "days": 3}
VISITOR = "visitor-0001"


@pytest.fixture
def site(make_site):
    return make_site()


@pytest.fixture
def teased(make_campaign, site):
    """A running survey that waits 7 days after a close, with a 3-day teaser."""
    return make_campaign(site, frequency={"days_after_close": 7, "teaser": TEASER})


def ids(campaign) -> tuple[int, int]:
    return campaign["id"], campaign["variants"][0]["id"]


def shown_and_closed(client, site, campaign, visitor=VISITOR):
    """The visitor is offered the popup, sees it and closes it."""
    assert decide(client, site, visitor).json["campaigns"]
    sent = send_events(
        client,
        site,
        [event("impression", visitor, *ids(campaign)), event("close", visitor, *ids(campaign))],
    )
    assert sent.status_code == 202, sent.json


def results(admin, campaign) -> dict:
    body = admin.get(f"/api/v1/admin/campaigns/{campaign['id']}/results").json
    return {v["variant_id"]: v for v in body["variants"]}


# -- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("teaser", "field"),
    [
        ({"side": "right", "days": 3}, "frequency.teaser.text"),
        ({"text": "  ", "days": 3}, "frequency.teaser.text"),
        ({"text": "x" * 41}, "frequency.teaser.text"),
        ({"text": {"en": "Hi", "de": 5}}, "frequency.teaser.text"),
        ({"text": "Hi", "side": "top"}, "frequency.teaser.side"),
        ({"text": "Hi", "days": 0}, "frequency.teaser.days"),
        ({"text": "Hi", "days": 31}, "frequency.teaser.days"),
        ({"text": "Hi", "days": 2.5}, "frequency.teaser.days"),
        ({"text": "Hi", "hours": 2}, "frequency.teaser.hours"),
    ],
)
def test_bad_teaser_settings_answer_400_naming_the_field(admin, site, teaser, field):
    response = admin.post(
        f"/api/v1/admin/sites/{site['id']}/campaigns",
        json={"name": "S", "kind": "survey", "frequency": {"teaser": teaser}},
    )
    assert response.status_code == 400
    assert field in response.json["error"]["fields"], response.json


def test_teaser_settings_are_stored_with_defaults(admin, make_campaign, site):
    campaign = make_campaign(site, frequency={"teaser": {"text": {"en": "Hi", "de": "Hallo"}}})
    stored = admin.get(f"/api/v1/admin/campaigns/{campaign['id']}").json["frequency"]["teaser"]
    assert stored == {"text": {"en": "Hi", "de": "Hallo"}, "side": "right", "days": None}


# -- decide ---------------------------------------------------------------------------------------


def test_every_offer_of_the_campaign_carries_its_teaser(client, site, teased):
    [offer] = decide(client, site).json["campaigns"]
    assert offer["teaser"] == TEASER


def test_after_a_close_decide_offers_the_tab_only(client, site, teased):
    shown_and_closed(client, site, teased)
    answer = decide(client, site, debug=True).json
    assert answer["campaigns"] == []
    [teaser] = answer["teasers"]
    assert (teaser["campaign_id"], teaser["variant_id"]) == ids(teased)
    assert teaser["teaser"] == TEASER and teaser["content"]["steps"]
    # The plain answer (no debug) says the same.
    assert decide(client, site).json["teasers"][0]["campaign_id"] == teased["id"]


@pytest.mark.parametrize(("days", "offered"), [(2.9, True), (3.1, False)])
def test_tab_is_offered_only_within_its_days_after_the_close(client, site, teased, days, offered):
    shown_and_closed(client, site, teased)
    time_passes(timedelta(days=days))
    answer = decide(client, site).json
    assert answer["campaigns"] == []  # days_after_close (7) still holds for the popup
    assert bool(answer.get("teasers")) is offered


def test_popup_itself_comes_back_after_days_after_close(client, make_campaign, site):
    campaign = make_campaign(site, frequency={"days_after_close": 1, "teaser": TEASER})
    shown_and_closed(client, site, campaign)
    time_passes(timedelta(days=1, hours=1))
    answer = decide(client, site).json
    assert [c["campaign_id"] for c in answer["campaigns"]] == [campaign["id"]]
    assert "teasers" not in answer


def test_a_page_view_only_teaser_is_never_offered_on_a_later_page(client, make_campaign, site):
    campaign = make_campaign(
        site, frequency={"days_after_close": 7, "teaser": {"text": "Get 10% off"}}
    )
    shown_and_closed(client, site, campaign)
    assert "teasers" not in decide(client, site).json


def test_no_tab_without_a_shown_popup_or_after_completion(client, site, teased):
    # Closed without an impression (a forged close): no tab.
    decide(client, site)
    send_events(client, site, [event("close", VISITOR, *ids(teased))])
    assert "teasers" not in decide(client, site).json
    # Completed: the survey is done, no tab either.
    other = "visitor-0002"
    shown_and_closed(client, site, teased, other)
    send_events(client, site, [event("complete", other, *ids(teased))])
    assert "teasers" not in decide(client, site, other).json


def test_tab_follows_targeting_but_not_the_site_cooldown(client, make_site, make_campaign):
    site = make_site(cooldown_hours=24)
    campaign = make_campaign(
        site,
        targeting={"url_exclude": ["/checkout*"]},
        frequency={"days_after_close": 7, "teaser": TEASER},
    )
    shown_and_closed(client, site, campaign)
    assert decide(client, site).json["teasers"]
    assert "teasers" not in decide(client, site, url="https://shop.example/checkout").json


def test_tab_outlives_the_impression_cap(client, make_campaign, site):
    campaign = make_campaign(site, frequency={"max_impressions": 1, "teaser": TEASER})
    shown_and_closed(client, site, campaign)
    answer = decide(client, site).json
    assert answer["campaigns"] == [] and answer["teasers"]


def test_at_most_one_tab_the_highest_prioritys(client, make_campaign, site):
    low = make_campaign(
        site, name="low", priority=1, frequency={"teaser": TEASER, "days_after_close": 7}
    )
    high = make_campaign(
        site, name="high", priority=5, frequency={"teaser": TEASER, "days_after_close": 7}
    )
    shown_and_closed(client, site, low)
    shown_and_closed(client, site, high)
    assert [t["campaign_id"] for t in decide(client, site).json["teasers"]] == [high["id"]]


# -- events ---------------------------------------------------------------------------------------


def test_teaser_events_are_stored_and_counted_once_per_visitor(app, client, admin, site, teased):
    shown_and_closed(client, site, teased)
    sent = send_events(
        client,
        site,
        [
            event("teaser_shown", VISITOR, *ids(teased)),
            event("teaser_shown", VISITOR, *ids(teased)),
            event("teaser_open", VISITOR, *ids(teased)),
        ],
    )
    assert sent.status_code == 202 and sent.json["accepted"] == 3
    stored = db.session.scalars(select(Event.type).where(Event.type.like("teaser%"))).all()
    assert sorted(stored) == ["teaser_open", "teaser_shown", "teaser_shown"]
    figures = results(admin, teased)[ids(teased)[1]]
    assert figures["teaser"] == {"shown": 1, "opened": 1}
    # A reopening is not an impression: the cap and the A/B denominator are unchanged.
    assert figures["visitors"] == 1
    assignment = db.session.scalar(select(Assignment).where(Assignment.campaign_id == teased["id"]))
    assert assignment.impressions == 1


def test_a_forged_reopening_changes_no_figures(client, admin, site, teased, make_campaign):
    never_offered = make_campaign(site, name="never", targeting={"url_include": ["/nowhere"]})
    decide(client, site)  # assigned to the teased survey, shown nothing yet
    sent = send_events(
        client,
        site,
        [
            event("impression", VISITOR, *ids(teased)),
            event("teaser_open", VISITOR, *ids(teased)),  # never closed
            event("teaser_shown", VISITOR, *ids(teased)),
            event("teaser_open", VISITOR, *ids(never_offered)),  # never offered
        ],
    )
    assert sent.status_code == 202
    assert results(admin, teased)[ids(teased)[1]]["teaser"] == {"shown": 0, "opened": 0}
    assert results(admin, never_offered)[ids(never_offered)[1]]["teaser"] == {
        "shown": 0,
        "opened": 0,
    }


def test_teaser_events_need_their_campaign_and_variant(client, site, teased):
    sent = send_events(client, site, [event("teaser_open", VISITOR, teased["id"])])
    assert sent.status_code == 400
    assert "events.0.variant_id" in sent.json["error"]["fields"]
