"""The template gallery of the admin page: every template previewed, and created as a draft by
a CSRF-protected form that opens the new campaign's page."""

import re

import pytest
from markupsafe import escape
from sqlalchemy import select

from widget_server.extensions import db
from widget_server.models import Campaign
from widget_server.services.campaigns import templates

TEMPLATE_IDS = [t.id for t in templates.TEMPLATES]
SCRIPT = "<script>window.__pwned = 1</script>"


def test_campaigns_page_links_to_the_gallery(page, make_site):
    site = make_site()
    html = page.get(f"/admin/sites/{site['id']}/campaigns").get_data(as_text=True)
    assert f'href="/admin/sites/{site["id"]}/campaigns/templates"' in html
    assert "New from a template" in html


def test_gallery_shows_every_template_with_a_preview_and_a_form(page, make_site):
    site = make_site()
    response = page.get(f"/admin/sites/{site['id']}/campaigns/templates")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for template in templates.TEMPLATES:
        assert escape(template.name) in html
        assert escape(template.description) in html
        preview = f"/admin/sites/{site['id']}/campaigns/templates/{template.id}/preview/0"
        assert f'src="{preview}"' in html
        assert f'name="template" value="{template.id}"' in html
    forms = re.findall(r"<form method=\"post\"[^>]*>(.*?)</form>", html, re.S)
    assert len(forms) == len(TEMPLATE_IDS)
    assert all('name="csrf_token"' in form for form in forms)


def test_gallery_escapes_the_site_name(page, make_site):
    site = make_site(name=SCRIPT)
    html = page.get(f"/admin/sites/{site['id']}/campaigns/templates").get_data(as_text=True)
    assert SCRIPT not in html and escape(SCRIPT) in html


def test_gallery_offers_the_sites_pools_for_the_wheel(page, make_site, admin):
    site = make_site()
    url = f"/admin/sites/{site['id']}/campaigns/templates"
    assert 'name="pool_id"' not in page.get(url).get_data(as_text=True)
    pool = admin.post(
        f"/api/v1/admin/sites/{site['id']}/coupon-pools", json={"name": "<b>Ten</b>"}
    ).json
    html = page.get(url).get_data(as_text=True)
    assert f'<option value="{pool["id"]}">&lt;b&gt;Ten&lt;/b&gt; (0 left)</option>' in html


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_use_this_template_creates_the_draft_and_opens_its_page(page, make_site, template_id):
    site = make_site()
    response = page.post(
        f"/admin/sites/{site['id']}/campaigns/from-template", data={"template": template_id}
    )
    assert response.status_code == 302
    campaign = db.session.scalars(select(Campaign).where(Campaign.site_id == site["id"])).one()
    assert response.headers["Location"] == f"/admin/campaigns/{campaign.id}"
    draft = templates.draft(template_id)
    assert (campaign.status, campaign.name) == ("draft", draft["name"])
    assert campaign.kind == draft["kind"]
    assert [v.name for v in campaign.variants] == [v["name"] for v in draft["variants"]]
    html = page.get(response.headers["Location"]).get_data(as_text=True)
    assert "Draft created" in html
    assert html.count('class="preview-frame"') == len(draft["variants"])


def test_the_wheel_with_a_pool_from_the_form(page, make_site, admin):
    site = make_site()
    pool = admin.post(f"/api/v1/admin/sites/{site['id']}/coupon-pools", json={"name": "P"}).json
    response = page.post(
        f"/admin/sites/{site['id']}/campaigns/from-template",
        data={"template": "spin_to_win", "pool_id": str(pool["id"])},
    )
    assert response.status_code == 302
    wheel = db.session.scalars(select(Campaign).where(Campaign.site_id == site["id"])).one()
    rewards = [s["reward"] for s in wheel.variants[0].content["slices"]]
    assert {"type": "pool", "pool_id": pool["id"]} in rewards
    assert "Draft created from the template" in page.get(response.headers["Location"]).text


def test_the_wheel_without_a_pool_says_what_to_edit(page, make_site):
    site = make_site()
    response = page.post(
        f"/admin/sites/{site['id']}/campaigns/from-template", data={"template": "spin_to_win"}
    )
    assert templates.PLACEHOLDER_CODE in page.get(response.headers["Location"]).text


def test_unknown_template_is_refused_on_the_gallery(page, make_site):
    site = make_site()
    response = page.post(
        f"/admin/sites/{site['id']}/campaigns/from-template", data={"template": SCRIPT}
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "The draft was not created" in html and "template:" in html
    assert SCRIPT not in html
    assert db.session.scalars(select(Campaign)).all() == []


def test_use_this_template_without_the_csrf_token_is_refused(page, make_site):
    site = make_site()
    response = page.client.post(
        f"/admin/sites/{site['id']}/campaigns/from-template", data={"template": "nps"}
    )
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert db.session.scalars(select(Campaign)).all() == []


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_template_preview_frame_loads_the_real_snippet(page, make_site, template_id):
    site = make_site()
    response = page.get(f"/admin/sites/{site['id']}/campaigns/templates/{template_id}/preview/0")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'src="/static/widget.js"' in html and f'data-site="{site["site_key"]}"' in html
    first = templates.draft(template_id)["variants"][0]["content"]
    key = "steps" if "steps" in first else "slices"
    label = first[key][0]["question" if key == "steps" else "label"]
    assert label.replace("'", "\\u0027") in html  # as |tojson writes it
    assert "frame-ancestors 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"


@pytest.mark.parametrize("path", ["nope/preview/0", "nps/preview/1", "loyalty/preview/2"])
def test_template_preview_of_nothing_is_404(page, make_site, path):
    site = make_site()
    response = page.get(f"/admin/sites/{site['id']}/campaigns/templates/{path}")
    assert response.status_code == 404


def test_gallery_needs_a_login(client, make_site):
    site = make_site()
    response = client.get(f"/admin/sites/{site['id']}/campaigns/templates")
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
