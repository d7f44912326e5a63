"""Ids and dates in query strings and bodies that the database cannot hold or that overflow: a 400
naming the field, or the right answer, never a 500. The responses export streams its CSV, so a
query that failed (an id over 2^63, ``date_to=9999-12-31`` plus a day) failed after its 200."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import select, update

from tests.admin.test_admin_data_pages import answer, text_survey
from tests.helpers import event, post_public, send_events
from widget_server.extensions import db
from widget_server.models import Response

BAD_IDS = [str(2**31), str(2**63), "99999999999999999999", "0", "-1", "²", "٣", "1_0", " 1"]


def export_rows(response) -> list[list[str]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))[1:]


@pytest.fixture
def survey(client, make_site, make_campaign):
    """A site with a survey answered by two visitors: ``(site, campaign)``."""
    site = make_site()
    campaign = text_survey(make_campaign, site)
    answer(client, site, campaign, "visitor-0001", why="cheaper elsewhere")
    answer(client, site, campaign, "visitor-0002", why="just looking")
    return site, campaign


@pytest.mark.parametrize("value", BAD_IDS)
@pytest.mark.parametrize("name", ["campaign_id", "variant_id"])
def test_api_export_refuses_an_id_filter_it_cannot_hold_naming_it(admin, survey, name, value):
    site, _ = survey
    query = urlencode({name: value})
    response = admin.get(f"/api/v1/admin/sites/{site['id']}/responses.csv?{query}")
    assert response.status_code == 400
    assert list(response.json["error"]["fields"]) == [name]


@pytest.mark.parametrize("value", [str(2**63), "99999999999999999999", "²"])
@pytest.mark.parametrize("name", ["campaign_id", "variant_id"])
def test_page_export_refuses_an_id_filter_it_cannot_hold_naming_it(page, survey, name, value):
    site, _ = survey
    query = urlencode({name: value})
    response = page.get(f"/admin/sites/{site['id']}/responses.csv?{query}")
    assert response.status_code == 400
    assert name in response.get_data(as_text=True)


def test_responses_page_reports_an_id_filter_it_cannot_hold_and_shows_the_rest(page, survey):
    site, _ = survey
    response = page.get(f"/admin/sites/{site['id']}/responses?campaign_id=99999999999999999999")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "not understood and are ignored: campaign_id." in html
    assert "2 responses" in html


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"date_to": "9999-12-31"}, 2),
        ({"date_from": "0001-01-01", "date_to": "9999-12-31"}, 2),
        ({"date_from": "9999-12-31"}, 0),
        ({"date_to": "0001-01-01"}, 0),
    ],
)
def test_export_dates_at_the_ends_of_the_calendar_are_answered(
    admin, page, survey, query, expected
):
    site, _ = survey
    path = f"/sites/{site['id']}/responses.csv?{urlencode(query)}"
    assert len(export_rows(admin.get("/api/v1/admin" + path))) == expected
    assert len(export_rows(page.get("/admin" + path))) == expected


def test_date_to_includes_the_whole_of_that_day_and_nothing_after(admin, survey):
    site, _ = survey
    # One response aged to 23:59 two days ago: date_to of that day includes it, the day before
    # does not, and the fresh response is after it.
    two_days_ago = datetime.now(UTC).date() - timedelta(days=2)
    late_that_day = datetime.combine(two_days_ago, datetime.max.time(), UTC) - timedelta(seconds=30)
    first = db.session.scalars(select(Response.id).order_by(Response.id)).first()
    db.session.execute(
        update(Response).where(Response.id == first).values(updated_at=late_that_day)
    )
    db.session.commit()

    def count(**query) -> int:
        path = f"/api/v1/admin/sites/{site['id']}/responses.csv?{urlencode(query)}"
        return len(export_rows(admin.get(path)))

    assert count(date_to=two_days_ago.isoformat()) == 1
    assert count(date_to=(two_days_ago - timedelta(days=1)).isoformat()) == 0
    assert count(date_from=(two_days_ago + timedelta(days=1)).isoformat()) == 1
    assert count(date_to=date.today().isoformat()) == 2


@pytest.mark.parametrize("value", BAD_IDS)
def test_funnel_figures_refuse_a_campaign_id_they_cannot_hold_naming_it(admin, make_site, value):
    site = make_site()
    response = admin.get(
        f"/api/v1/admin/sites/{site['id']}/funnel?{urlencode({'campaign_id': value})}"
    )
    assert response.status_code == 400
    assert list(response.json["error"]["fields"]) == ["campaign_id"]


@pytest.mark.parametrize("value", ["²", "1_2", "99999999999999999999"])
def test_funnel_figures_refuse_weeks_that_are_not_a_small_ascii_number(admin, make_site, value):
    site = make_site()
    response = admin.get(f"/api/v1/admin/sites/{site['id']}/funnel?{urlencode({'weeks': value})}")
    assert response.status_code == 400
    assert list(response.json["error"]["fields"]) == ["weeks"]


@pytest.mark.parametrize("big", [2**31, 2**63, 10**20])
def test_ids_in_bodies_that_the_database_cannot_hold_are_refused_naming_them(
    client, admin, make_site, make_campaign, big
):
    site = make_site()
    campaign = make_campaign(site)
    variant_id = campaign["variants"][0]["id"]

    promote = admin.post(
        f"/api/v1/admin/campaigns/{campaign['id']}/promote", json={"variant_id": big}
    )
    spin = post_public(client, site, "spin", {"visitor_id": "visitor-0001", "campaign_id": big})
    events = send_events(
        client,
        site,
        [
            event("impression", "visitor-0001", big, variant_id),
            event("impression", "visitor-0001", campaign["id"], big),
        ],
    )
    wheel = admin.post(
        f"/api/v1/admin/sites/{site['id']}/campaigns",
        json={
            "name": "W",
            "kind": "wheel",
            "variants": [
                {
                    "name": "A",
                    "is_control": True,
                    "content": {
                        "slices": [
                            {"label": "x", "weight": 1, "reward": {"type": "pool", "pool_id": big}},
                            {"label": "y", "weight": 1},
                        ]
                    },
                }
            ],
        },
    )

    for response, field in [
        (promote, "variant_id"),
        (spin, "campaign_id"),
        (events, "events.0.campaign_id"),
        (events, "events.1.variant_id"),
        (wheel, "variants.0.content.slices.0.reward.pool_id"),
    ]:
        assert response.status_code == 400, response.json
        assert field in response.json["error"]["fields"], response.json
