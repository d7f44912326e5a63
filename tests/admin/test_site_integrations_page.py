"""The admin page's Integrations form: the webhook addresses, write-only secrets (whether one is
set, a new one, or none), the cart link, CSRF as every form, and messages under the field."""

import re

from sqlalchemy import select

from widget_server.extensions import db
from widget_server.models import Site

SECRET = "whsec-0123456789abcdef"


def stored(site) -> dict:
    db.session.expire_all()
    return db.session.scalar(select(Site.integrations).where(Site.id == site["id"]))


def form(shopify=None, woocommerce=None) -> dict:
    """The posted form: each checkbox as the page posts it (hidden false, then true if ticked)."""
    data = {}
    for platform, fields in (("shopify", shopify or {}), ("woocommerce", woocommerce or {})):
        prefix = f"integrations.{platform}"
        data[f"{prefix}.webhook_secret"] = fields.get("webhook_secret", "")
        data[f"{prefix}.link_cart"] = "true" if fields.get("link_cart") else "false"
        if fields.get("remove_secret"):
            data[f"{prefix}.remove_secret"] = "true"
    return data


def page_of(page, site) -> str:
    response = page.get(f"/admin/sites/{site['id']}/integrations")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_page_gives_each_platforms_webhook_address(page, make_site):
    site = make_site()
    html = page_of(page, site)
    for platform in ("shopify", "woocommerce"):
        address = f"http://localhost/api/v1/sites/{site['site_key']}/integrations/{platform}/orders"
        assert address in html
    assert html.count("<strong>not set</strong>") == 2
    assert 'aria-current="page">Integrations</a>' in html


def test_a_secret_pasted_on_the_page_is_stored_and_never_shown(page, make_site):
    site = make_site()
    posted = form(shopify={"webhook_secret": f" {SECRET} ", "link_cart": True})
    response = page.post(f"/admin/sites/{site['id']}/integrations", posted)
    assert response.status_code == 302
    assert stored(site) == {"shopify": {"webhook_secret": SECRET, "link_cart": True}}
    html = page_of(page, site)
    assert SECRET not in html
    assert "<strong>set</strong>" in html
    assert "Replace the secret" in html
    assert re.search(r'name="integrations.shopify.link_cart" value="true" checked', html)


def test_an_empty_secret_box_keeps_the_stored_secret(page, make_site):
    site = make_site()
    page.post(f"/admin/sites/{site['id']}/integrations", form(shopify={"webhook_secret": SECRET}))
    page.post(f"/admin/sites/{site['id']}/integrations", form(shopify={"link_cart": True}))
    assert stored(site) == {"shopify": {"webhook_secret": SECRET, "link_cart": True}}


def test_remove_the_secret_clears_it(page, make_site):
    site = make_site()
    page.post(
        f"/admin/sites/{site['id']}/integrations", form(woocommerce={"webhook_secret": SECRET})
    )
    response = page.post(
        f"/admin/sites/{site['id']}/integrations", form(woocommerce={"remove_secret": True})
    )
    assert response.status_code == 302
    assert "webhook_secret" not in stored(site).get("woocommerce", {})


def test_a_bad_secret_is_named_under_its_box_and_nothing_is_stored(page, make_site):
    site = make_site()
    posted = form(shopify={"webhook_secret": "abc\x07def", "link_cart": True})
    response = page.post(f"/admin/sites/{site['id']}/integrations", posted)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Shopify webhook secret" in html  # the summary names the field
    assert 'id="err-integrations.shopify.webhook_secret"' in html
    assert "abc" not in html  # what was typed is not echoed either
    assert stored(site) == {}


def test_links_for_two_platforms_are_refused_under_the_field(page, make_site):
    site = make_site()
    posted = form(shopify={"link_cart": True}, woocommerce={"link_cart": True})
    response = page.post(f"/admin/sites/{site['id']}/integrations", posted)
    assert response.status_code == 400
    assert "Already on for" in response.get_data(as_text=True)
    assert stored(site) == {}


def test_the_form_needs_its_csrf_token(page, make_site):
    site = make_site()
    response = page.client.post(
        f"/admin/sites/{site['id']}/integrations", data=form(shopify={"webhook_secret": SECRET})
    )
    assert response.status_code == 400
    assert stored(site) == {}


def test_an_unknown_site_is_404(page):
    assert page.get("/admin/sites/999/integrations").status_code == 404
