"""The opt-in cart link in Chromium: with the site's ``integrations.<platform>.link_cart`` on,
the snippet writes its visitor id where the store platform's order webhook carries it back
(Shopify: the cart attribute ``_funnelcake_visitor`` through ``/cart/update.js``; WooCommerce:
the first-party cookie ``funnelcake_visitor``), and the order then lands on that visitor.

The demo store stands in for the shop: Shopify's Ajax cart endpoint is answered by a route that
keeps the attributes and sets Shopify's ``cart`` cookie as the platform does.
"""

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select

from tests.helpers import until
from tests.widget.helpers import SITE_KEY, freeze_clock, visitor_key
from widget_server.extensions import db
from widget_server.models import Order, Site, Visitor
from widget_server.services.campaigns import catalog

pytestmark = pytest.mark.browser

SHOPIFY_SECRET = "shpss_test_cart_link"


def link_carts(app, platform: str | None) -> None:
    """Turn the demo site's cart link on for ``platform`` (None: off for both)."""
    with app.app_context():
        site = db.session.scalar(select(Site).where(Site.site_key == SITE_KEY))
        changes = {name: {"link_cart": name == platform} for name in ("shopify", "woocommerce")}
        if platform == "shopify":
            changes["shopify"]["webhook_secret"] = SHOPIFY_SECRET
        catalog.update_site(site, {"integrations": changes})


class ShopifyCart:
    """Shopify's ``POST /cart/update.js`` on the store's origin: it keeps the cart's attributes
    and answers with the ``cart`` cookie of the cart (a new token once an order empties it)."""

    def __init__(self, page):
        self.token = "c1-first"
        self.attributes: dict[str, str] = {}
        self.writes: list[dict] = []
        page.route("**/cart/update.js", self.update)

    def update(self, route):
        request = route.request
        form = {key: values[0] for key, values in parse_qs(request.post_data or "").items()}
        self.writes.append(form)
        for key, value in form.items():
            if key.startswith("attributes[") and key.endswith("]"):
                self.attributes[key[len("attributes[") : -1]] = value
        route.fulfill(
            status=200,
            content_type="application/json",
            headers={"Set-Cookie": f"cart={self.token}; path=/; SameSite=Lax"},
            body=json.dumps({"token": self.token, "attributes": self.attributes}),
        )


def open_store(page, url: str, path: str = "/demo/") -> None:
    freeze_clock(page)  # no popup opens: only the link is under test
    page.goto(f"{url}{path}")


def test_off_by_default_the_snippet_touches_no_cart_and_sets_no_cookie(live_server, new_page):
    page = new_page()
    cart = ShopifyCart(page)
    decided = []
    page.on("response", lambda r: r.url.endswith("/decide") and decided.append(r.json()))
    open_store(page, live_server.url)
    assert until(lambda: decided, page=page)
    assert "link_cart" not in decided[0]
    page.wait_for_timeout(300)
    assert cart.writes == []
    assert "funnelcake_visitor" not in {c["name"] for c in page.context.cookies()}


def test_shopify_cart_carries_the_visitor_once_per_cart_and_the_order_lands_on_it(
    live_server, new_page
):
    app = live_server.app
    link_carts(app, "shopify")
    page = new_page()
    cart = ShopifyCart(page)
    open_store(page, live_server.url)
    assert until(lambda: cart.writes, page=page)
    visitor = visitor_key(page)
    assert cart.attributes == {"_funnelcake_visitor": visitor}

    # The same cart on the next pages: nothing written again.
    for path in ("/demo/cart", "/demo/"):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_timeout(300)
    assert len(cart.writes) == 1

    # An order empties the cart; Shopify's next cart has another token: written again.
    cart.token, cart.attributes = "c1-second", {}
    page.context.add_cookies([{"name": "cart", "value": "c1-second", "url": live_server.url}])
    page.goto(f"{live_server.url}/demo/")
    assert until(lambda: len(cart.writes) == 2, page=page)
    assert cart.attributes == {"_funnelcake_visitor": visitor}

    # Shopify's orders/create webhook, its note_attributes as the cart's attributes.
    order = {
        "id": 820982911946154508,
        "email": None,
        "created_at": "2026-12-04T10:00:00-05:00",
        "total_price": "59.90",
        "currency": "EUR",
        "customer": None,
        "discount_codes": [],
        "note_attributes": [{"name": k, "value": v} for k, v in cart.attributes.items()],
    }
    body = json.dumps(order).encode()
    digest = hmac.new(SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()
    answer = page.request.post(
        f"{live_server.url}/api/v1/sites/{SITE_KEY}/integrations/shopify/orders",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
            "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            "X-Shopify-Topic": "orders/create",
        },
    )
    assert answer.ok, answer.text()
    with app.app_context():
        stored = db.session.scalar(select(Order).where(Order.order_ref == str(order["id"])))
        owner = db.session.get(Visitor, stored.visitor_id)
        assert owner.visitor_key == visitor


def test_woocommerce_cookie_carries_the_visitor_and_consent_withdrawn_clears_it(
    live_server, new_page
):
    link_carts(live_server.app, "woocommerce")
    page = new_page()
    cart = ShopifyCart(page)

    def cookie():
        found = [c for c in page.context.cookies() if c["name"] == "funnelcake_visitor"]
        return found[0] if found else None

    open_store(page, live_server.url)
    assert until(cookie, page=page)
    assert cookie()["value"] == visitor_key(page)
    assert cookie()["path"] == "/" and cookie()["sameSite"] == "Lax"
    assert cart.writes == []  # not Shopify's cart
    page.evaluate("funnelcake('consent', false)")
    assert until(lambda: cookie() is None, page=page)
    assert visitor_key(page) is None
