"""The admin funnel page: every visitor counted, shares that add up, the snapshot's true age."""

import re
from datetime import timedelta

import pytest

from tests.funnel.helpers import place_order
from tests.helpers import decide, survey_content
from widget_server.admin.funnel import age_words
from widget_server.services.funnel.figures import snapshots


@pytest.fixture
def site(make_site, app):
    app.config["FUNNEL_FIGURES_TTL_S"] = 30.0
    return make_site()


def funnel_page(page, site) -> str:
    response = page.get(f"/admin/sites/{site['id']}/funnel")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def age_line(html: str) -> str:
    found = re.search(r'<p class="muted figures-age">(.*?)</p>', html, re.S)
    return " ".join(found.group(1).split())


def test_page_counts_visitors_who_never_answered_in_the_entry_stage(page, client, site):
    for index in range(3):
        decide(client, site, f"visitor-anon{index:04d}")
    decide(client, site, "visitor-buyer001")
    place_order(site, "visitor-buyer001", "10.00")

    html = funnel_page(page, site)

    table = html.split("<h2>Per stage</h2>")[1]
    new_visitor_row = re.search(r"<strong>New visitor</strong>.*?</tr>", table, re.S).group(0)
    assert 'data-label="Visitors">3</td>' in new_visitor_row
    assert "counted in <strong>New visitor</strong> until a rule moves them (3 now)" in html
    assert "No stage" not in html  # nobody is left outside the funnel


def test_bar_notes_give_shares_that_add_up_to_100(page, client, site):
    for index in range(2):
        decide(client, site, f"visitor-anon{index:04d}")
    decide(client, site, "visitor-buyer001")
    place_order(site, "visitor-buyer001", "10.00")

    chart = funnel_page(page, site).split('<div class="chart-compact">')[0]
    shares = [float(s) for s in re.findall(r"([\d.]+)% of visitors", chart)]

    assert len(shares) == 6  # one per stage of the default funnel
    assert shares[:2] == [66.7, 33.3]  # 2 of 3 new visitors, 1 of 3 customers
    assert round(sum(shares), 1) == 100.0


def test_page_says_how_old_its_snapshot_is_and_never_live(page, site, clock):
    assert age_line(funnel_page(page, site)).startswith("Figures computed just now")

    clock.now += timedelta(seconds=20)
    young = age_line(funnel_page(page, site))
    assert young.startswith("Figures computed 20 s ago")
    assert "recomputed once they are older than 30 s" in young

    clock.now += timedelta(minutes=3)
    stale_html = funnel_page(page, site)
    stale = age_line(stale_html)
    assert stale.startswith("Figures computed 3 min ago")
    assert "newer figures are being computed now" in stale
    assert not re.search(r"\blive\b", stale_html, re.I)

    snapshots().wait()
    assert age_line(funnel_page(page, site)).startswith("Figures computed just now")


def test_page_without_a_ttl_says_its_figures_were_computed_for_it(page, app, site):
    app.config["FUNNEL_FIGURES_TTL_S"] = 0
    line = age_line(funnel_page(page, site))
    assert re.fullmatch(
        r"Figures computed just now \([\d-]+ [\d:]+ UTC\)\. Computed for this page\.", line
    )


@pytest.mark.parametrize(
    ("age_s", "words"),
    [
        (0, "just now"),
        (1.9, "just now"),
        (2, "2 s ago"),
        (59.4, "59 s ago"),
        (60, "1 min ago"),
        (185, "3 min ago"),
        (3599, "59 min ago"),
        (3600, "1 h ago"),
        (47 * 3600, "47 h ago"),
        (3 * 86400, "3 days ago"),
    ],
)
def test_age_in_words(age_s, words):
    assert age_words(age_s) == words


@pytest.mark.parametrize(("steps", "words"), [(1, "1 question"), (2, "2 questions")])
def test_campaign_page_counts_questions_in_the_singular_and_plural(
    page, site, make_campaign, steps, words
):
    content = survey_content()
    content["steps"] = content["steps"][:steps]
    campaign = make_campaign(site, variants=[{"name": "A", "is_control": True, "content": content}])

    html = page.get(f"/admin/campaigns/{campaign['id']}").get_data(as_text=True)

    assert re.search(rf"weight 1 ·\s*{words}</span>", html)
