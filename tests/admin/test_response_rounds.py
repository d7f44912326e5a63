"""A recurring survey's rounds on the responses page and in the CSV export."""

import csv
import io
from datetime import timedelta

from tests.campaigns.test_recurring_surveys import QUARTER, _answer_and_complete, _offered
from tests.helpers import time_passes


def test_the_export_and_the_responses_page_carry_the_round(
    client, admin, page, make_site, make_campaign
):
    site = make_site()
    campaign = make_campaign(site, frequency=QUARTER)
    _offered(client, site)
    _answer_and_complete(client, site, campaign, 2)
    # The visitor's rows age; the admin's login (12 hours) does not.
    time_passes(timedelta(days=91), "visitors", "assignments", "responses", "events")
    _offered(client, site)
    _answer_and_complete(client, site, campaign, 4)
    url = f"/api/v1/admin/sites/{site['id']}/responses.csv?campaign_id={campaign['id']}"
    rows = list(csv.DictReader(io.StringIO(admin.get(url).get_data(as_text=True))))
    assert sorted((row["round"], row["q2: How likely are you to buy?"]) for row in rows) == [
        ("1", "2"),
        ("2", "4"),
    ]
    html = page.get(f"/admin/sites/{site['id']}/responses").get_data(as_text=True)
    assert "round 2" in html
