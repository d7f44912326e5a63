"""Responses (escaping, filters, CSV), results, promote/undo, funnel, coupons, and the commands."""

import csv
import io

import pytest
from sqlalchemy import select

from tests.admin.helpers import PASSWORD, log_in
from tests.helpers import decide, event, send_events, survey_variants
from widget_server.admin import charts
from widget_server.extensions import db
from widget_server.models import AdminUser, Campaign

SCRIPT = "<script>alert('x')</script>"


def answer(client, site, campaign, visitor, **answers):
    """A visitor sees the campaign and answers it, through the public API like the snippet."""
    offered = decide(client, site, visitor_id=visitor).json["campaigns"]
    variant_id = next(c["variant_id"] for c in offered if c["campaign_id"] == campaign["id"])
    events = [event("impression", visitor, campaign["id"], variant_id)]
    events += [
        event("answer", visitor, campaign["id"], variant_id, step_id=step, value=value)
        for step, value in answers.items()
    ]
    events.append(event("complete", visitor, campaign["id"], variant_id))
    assert send_events(client, site, events).status_code == 202
    return variant_id


def text_survey(make_campaign, site):
    steps = [
        {"id": "why", "type": "text", "question": "Why did you not buy?"},
        {
            "id": "found",
            "type": "single_choice",
            "question": "How did you find us?",
            "options": [{"id": "friend", "label": "A friend"}, {"id": "ad", "label": "An ad"}],
        },
    ]
    return make_campaign(
        site, variants=[{"name": "A", "is_control": True, "content": {"steps": steps}}]
    )


def test_visitor_answers_are_escaped_on_the_responses_page(page, client, make_site, make_campaign):
    site = make_site()
    campaign = text_survey(make_campaign, site)
    answer(client, site, campaign, "visitor-0001", why=SCRIPT, found="friend")
    html = page.get(f"/admin/sites/{site['id']}/responses").get_data(as_text=True)
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "A friend" in html  # option ids read as their labels


def test_responses_filters_and_pagination(page, client, make_site, make_campaign):
    site = make_site()
    campaign = text_survey(make_campaign, site)
    for n in range(52):
        answer(client, site, campaign, f"visitor-{n:04d}", why=f"reason {n}")
    url = f"/admin/sites/{site['id']}/responses"
    first = page.get(url).get_data(as_text=True)
    assert "52 responses · page 1 of 2" in first and "reason 51" in first
    second = page.get(url + "?page=2").get_data(as_text=True)
    assert "reason 0<" in second and "reason 51" not in second
    other = page.get(url + f"?campaign_id={campaign['id'] + 1}").get_data(as_text=True)
    assert "0 responses" in other
    bad = page.get(url + "?date_from=yesterday")
    assert bad.status_code == 200
    assert "Not a valid date." in bad.get_data(as_text=True)
    dated = page.get(url + "?date_to=2000-01-01").get_data(as_text=True)
    assert "0 responses" in dated


def test_csv_export_neutralises_formula_cells(page, client, make_site, make_campaign):
    site = make_site()
    campaign = text_survey(make_campaign, site)
    formulas = ['=HYPERLINK("http://evil")', "+1+1", "-2", "@SUM(A1)", "\tx", "\rx", SCRIPT]
    for n, value in enumerate(formulas):
        answer(client, site, campaign, f"visitor-{n:04d}", why=value, found="ad")
    response = page.get(f"/admin/sites/{site['id']}/responses.csv?campaign_id={campaign['id']}")
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][-2:] == ["why: Why did you not buy?", "found: How did you find us?"]
    whys = sorted(row[-2] for row in rows[1:])
    assert whys == sorted(["'" + f if f[0] in "=+-@\t\r" else f for f in formulas])
    assert {row[-1] for row in rows[1:]} == {"An ad"}


def test_results_page_shows_the_results_service_figures(
    page, client, admin, make_site, make_campaign
):
    site = make_site()
    campaign = text_survey(make_campaign, site)
    for n in range(3):
        answer(client, site, campaign, f"visitor-{n:04d}", why="ok")
    body = admin.get(f"/api/v1/admin/campaigns/{campaign['id']}/results").json
    [variant] = body["variants"]
    html = page.get(f"/admin/campaigns/{campaign['id']}/results").get_data(as_text=True)
    assert "Survey completion rate" in html
    assert f'data-label="Visitors">{variant["visitors"]}</td>' in html
    assert f'data-label="Conversions">{variant["conversions"]}</td>' in html
    assert f'data-label="Rate">{variant["rate"] * 100:.1f}%</td>' in html
    assert body["decision"]["reason"] in html
    assert html.count('<svg class="chart"') == 2  # wide and compact, one shown by the stylesheet


def test_promote_and_undo_buttons(page, client, make_site, make_campaign):
    site = make_site()
    campaign = make_campaign(site, variants=survey_variants())
    b_id = campaign["variants"][1]["id"]
    url = f"/admin/campaigns/{campaign['id']}"
    for n in range(20):
        answer(client, site, campaign, f"visitor-{n:04d}", q1="search")
    assert page.post(url + "/promote", {"variant_id": str(b_id)}).status_code == 302
    stored = db.session.get(Campaign, campaign["id"])
    db.session.refresh(stored)
    assert stored.promoted_variant_id == b_id
    html = page.get(url + "/results").get_data(as_text=True)
    assert "Promoted by hand: B." in html and "Undo latest decision" in html
    assert page.post(url + "/undo").status_code == 302
    db.session.refresh(stored)
    assert stored.promoted_variant_id is None
    assert "Undid the promote" in page.get(url + "/results").get_data(as_text=True)


def test_campaign_list_and_funnel_pages(page, client, make_site, make_campaign):
    site = make_site()
    campaign = text_survey(make_campaign, site)
    answer(client, site, campaign, "visitor-0001", why="fine")
    listing = page.get(f"/admin/sites/{site['id']}/campaigns").get_data(as_text=True)
    assert "Survey" in listing and "running" in listing
    funnel = page.get(f"/admin/sites/{site['id']}/funnel").get_data(as_text=True)
    assert "Visitors per stage" in funnel and "<svg" in funnel
    assert "orders ≥ 2" in funnel  # the default funnel's repeat-customer rule, in words


def test_funnel_chart_notes_the_stage_to_stage_flow_of_the_funnel_service(
    page, client, admin, make_site, make_campaign
):
    site = make_site()
    campaign = text_survey(make_campaign, site)
    answer(client, site, campaign, "visitor-0001", why="fine")
    flow = admin.get(f"/api/v1/admin/sites/{site['id']}/funnel").json["conversion_by_week"]
    [row] = [r for r in flow if r["entered"]]
    funnel = page.get(f"/admin/sites/{site['id']}/funnel").get_data(as_text=True)
    assert f"{row['entered']} entered, {row['advanced_rate']:.0f}% moved on" in funnel


def test_responses_show_the_stage_by_its_name(page, client, make_site, make_campaign):
    site = make_site()
    campaign = text_survey(make_campaign, site)
    answer(client, site, campaign, "visitor-0001", why="fine")
    html = page.get(f"/admin/sites/{site['id']}/responses").get_data(as_text=True)
    assert '<td data-label="Stage">New visitor</td>' in html


@pytest.mark.parametrize(
    ("highest", "ticks"),
    [
        (0.42, [0.0, 0.2, 0.4, 0.6]),
        (0.05, [0.0, 0.02, 0.04, 0.06]),
        (1.0, [0.0, 0.25, 0.5, 0.75, 1.0]),
        (37.0, [0.0, 10.0, 20.0, 30.0, 40.0]),
    ],
)
def test_chart_axis_ticks_are_round_numbers(highest, ticks):
    assert charts._nice_ticks(highest) == pytest.approx(ticks)


def test_create_admin_command_reads_the_password_from_stdin(app, runner, client):
    result = runner.invoke(
        args=["create-admin", "shopkeeper", "--password-stdin"], input="a long passphrase\n"
    )
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(AdminUser.username)) == "shopkeeper"
    assert log_in(client, "shopkeeper", "a long passphrase").status_code == 302
    again = runner.invoke(args=["create-admin", "shopkeeper", "--password-stdin"], input="x\n")
    assert again.exit_code != 0


def test_create_admin_command_prompts_twice(app, runner):
    result = runner.invoke(args=["create-admin", "owner2"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "Repeat for confirmation" in result.output


def test_demo_prints_a_working_admin_login_and_reuses_it(app, runner, client):
    first = runner.invoke(args=["demo", "--no-serve"])
    assert first.exit_code == 0, first.output
    login = next(line for line in first.output.splitlines() if line.startswith("Admin login: "))
    assert "Admin page:  http://127.0.0.1:5000/admin/" in first.output
    second = runner.invoke(args=["demo", "--no-serve"])
    assert login in second.output.splitlines()
    username, password = login.removeprefix("Admin login: ").split(" / ")
    assert log_in(client, username, password).status_code == 302


def test_admin_api_exports_the_responses_as_csv(client, admin, make_site, make_campaign):
    site = make_site()
    campaign = text_survey(make_campaign, site)
    answer(client, site, campaign, "visitor-0001", why="=1+1", found="friend")
    answer(client, site, campaign, "visitor-0002", why="too dear", found="ad")
    url = f"/api/v1/admin/sites/{site['id']}/responses.csv?campaign_id={campaign['id']}"
    response = admin.get(url)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][-2:] == ["why: Why did you not buy?", "found: How did you find us?"]
    assert sorted(row[-2:] for row in rows[1:]) == [["'=1+1", "A friend"], ["too dear", "An ad"]]
    assert client.get(url).status_code == 401  # the bearer token, not the site key or a cookie
    bad = admin.get(f"/api/v1/admin/sites/{site['id']}/responses.csv?date_from=yesterday")
    assert bad.status_code == 400 and "date_from" in bad.json["error"]["fields"]
