"""The campaign form offers every test method the A/B engine judges (ab.policy.METHODS)."""

import re

from ab import policy


def test_the_campaign_form_offers_every_method(page, make_site):
    site = make_site()
    html = page.get(f"/admin/sites/{site['id']}/campaigns/new").get_data(as_text=True)
    select = html.split('name="ab.method"', 1)[1].split("</select>", 1)[0]
    assert sorted(re.findall(r'<option value="([a-z_]+)"', select)) == sorted(policy.METHODS)


def test_a_campaign_saved_with_msprt_shows_its_method_by_name(page, make_site, make_campaign):
    campaign = make_campaign(make_site(), ab={"method": "msprt"})
    html = page.get(f"/admin/campaigns/{campaign['id']}/results").get_data(as_text=True)
    assert "mixture sequential probability ratio test" in html
