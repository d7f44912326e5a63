"""A site's store platforms (``integrations``) through the admin API, and decide's ``link_cart``:
secrets are write-only, a PATCH changes what it names, bad values are 400s naming the field, and
decide answers the cart link from the cached site configuration."""

import time

import pytest
from sqlalchemy import select

from tests.helpers import decide, statements_sent
from tests.rewards.helpers import connect_platform
from widget_server.extensions import db
from widget_server.models import Site

SECRET = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


def stored_integrations(site) -> dict:
    db.session.expire_all()
    return db.session.scalar(select(Site.integrations).where(Site.id == site["id"]))


def patch(admin, site, integrations):
    return admin.patch(f"/api/v1/admin/sites/{site['id']}", json={"integrations": integrations})


def test_a_new_site_has_every_platform_off(admin, make_site):
    site = make_site()
    assert site["integrations"] == {
        "shopify": {"webhook_secret_set": False, "link_cart": False},
        "woocommerce": {"webhook_secret_set": False, "link_cart": False},
    }
    assert stored_integrations(site) == {}


def test_a_secret_is_stored_and_never_answered_back(admin, make_site):
    site = make_site()
    response = patch(admin, site, {"shopify": {"webhook_secret": SECRET}})
    assert response.status_code == 200, response.json
    assert response.json["integrations"]["shopify"] == {
        "webhook_secret_set": True,
        "link_cart": False,
    }
    assert stored_integrations(site) == {"shopify": {"webhook_secret": SECRET}}
    for answer in (
        response,
        admin.get(f"/api/v1/admin/sites/{site['id']}"),  # shows the site secret, not this one
        admin.get("/api/v1/admin/sites"),
    ):
        assert SECRET not in answer.get_data(as_text=True)
    single = admin.get(f"/api/v1/admin/sites/{site['id']}").json
    assert single["secret"].startswith("sk_")
    assert single["integrations"]["shopify"]["webhook_secret_set"] is True


def test_a_site_can_be_created_with_its_platform(admin):
    response = admin.post(
        "/api/v1/admin/sites",
        json={"name": "Woo", "integrations": {"woocommerce": {"webhook_secret": "s3cret"}}},
    )
    assert response.status_code == 201, response.json
    assert response.json["integrations"]["woocommerce"]["webhook_secret_set"] is True
    assert "s3cret" not in response.get_data(as_text=True)


def test_a_patch_changes_only_what_it_names(admin, make_site):
    site = make_site()
    connect_platform(admin, site, "shopify", secret=SECRET)
    assert patch(admin, site, {"shopify": {"link_cart": True}}).status_code == 200
    assert stored_integrations(site) == {"shopify": {"webhook_secret": SECRET, "link_cart": True}}
    other = admin.patch(f"/api/v1/admin/sites/{site['id']}", json={"name": "Renamed"})
    assert other.status_code == 200
    assert stored_integrations(site) == {"shopify": {"webhook_secret": SECRET, "link_cart": True}}


def test_a_secret_is_replaced_and_removed_with_null(admin, make_site):
    site = make_site()
    connect_platform(admin, site, "shopify", secret="first")
    assert patch(admin, site, {"shopify": {"webhook_secret": "second"}}).status_code == 200
    assert stored_integrations(site)["shopify"]["webhook_secret"] == "second"
    cleared = patch(admin, site, {"shopify": {"webhook_secret": None}})
    assert cleared.status_code == 200
    assert cleared.json["integrations"]["shopify"]["webhook_secret_set"] is False
    assert stored_integrations(site) == {}  # nothing left on: the platform is gone


def test_a_platform_is_removed_with_null(admin, make_site):
    site = make_site()
    connect_platform(admin, site, "woocommerce", link_cart=True)
    assert patch(admin, site, {"woocommerce": None}).status_code == 200
    assert stored_integrations(site) == {}


def test_blanks_around_a_pasted_secret_are_dropped(admin, make_site):
    site = make_site()
    assert patch(admin, site, {"shopify": {"webhook_secret": f"  {SECRET}\n"}}).status_code == 200
    assert stored_integrations(site)["shopify"]["webhook_secret"] == SECRET


@pytest.mark.parametrize(
    "integrations, field",
    [
        ({"bigcommerce": {"webhook_secret": "x"}}, "integrations.bigcommerce"),
        ({"shopify": {"webhook_secret": ""}}, "integrations.shopify.webhook_secret"),
        ({"shopify": {"webhook_secret": "   "}}, "integrations.shopify.webhook_secret"),
        ({"shopify": {"webhook_secret": 42}}, "integrations.shopify.webhook_secret"),
        ({"shopify": {"webhook_secret": "x" * 501}}, "integrations.shopify.webhook_secret"),
        ({"shopify": {"webhook_secret": "ab\x00cd"}}, "integrations.shopify.webhook_secret"),
        ({"woocommerce": {"link_cart": "sometimes"}}, "integrations.woocommerce.link_cart"),
        ({"woocommerce": {"secret": "x"}}, "integrations.woocommerce.secret"),
        ({"shopify": "secret"}, "integrations.shopify"),
        ("shopify", "integrations"),
    ],
)
def test_a_bad_integration_is_a_400_naming_the_field(admin, make_site, integrations, field):
    site = make_site()
    response = patch(admin, site, integrations)
    assert response.status_code == 400
    assert field in response.json["error"]["fields"], response.json
    assert stored_integrations(site) == {}


def test_carts_are_linked_for_one_platform_only(admin, make_site):
    site = make_site()
    connect_platform(admin, site, "shopify", link_cart=True)
    response = patch(admin, site, {"woocommerce": {"link_cart": True}})
    assert response.status_code == 400
    assert "integrations.woocommerce.link_cart" in response.json["error"]["fields"]
    assert "woocommerce" not in stored_integrations(site)


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_decide_answers_the_platform_whose_cart_is_linked(client, admin, make_site, platform):
    site = make_site()
    connect_platform(admin, site, platform, link_cart=True)
    assert decide(client, site).json["link_cart"] == platform
    assert decide(client, site, debug=True).json["link_cart"] == platform


def test_decide_says_nothing_of_carts_when_the_option_is_off(client, admin, make_site):
    site = make_site()
    assert "link_cart" not in decide(client, site).json
    connect_platform(admin, site, "shopify", link_cart=False)  # a secret alone links nothing
    assert "link_cart" not in decide(client, site).json
    assert "link_cart" not in decide(client, site, debug=True).json


def test_turning_the_link_off_reaches_another_worker_at_its_version_check(
    make_app, admin, make_site
):
    client = make_app(CONFIG_CACHE_TTL_S=60.0, CONFIG_CHECK_S=3600.0).test_client()
    site = make_site()
    connect_platform(admin, site, "woocommerce", link_cart=True)
    assert decide(client, site).json["link_cart"] == "woocommerce"
    patch(admin, site, {"woocommerce": {"link_cart": False}})
    # Saved through another app (worker): its cached copy gives way at its next version check.
    client.application.config["CONFIG_CHECK_S"] = 0.0
    assert "link_cart" not in decide(client, site).json


def test_decide_reads_the_link_from_the_cached_configuration(make_app, admin, make_site):
    client = make_app(CONFIG_CACHE_TTL_S=60.0, CONFIG_CHECK_S=3600.0).test_client()
    site = make_site()
    connect_platform(admin, site, "shopify", link_cart=True)
    visitor = f"returning-{time.monotonic_ns()}"
    assert decide(client, site, visitor).json["link_cart"] == "shopify"
    with statements_sent() as sent:
        assert decide(client, site, visitor).json["link_cart"] == "shopify"
    assert sent == []


def test_the_decide_answer_documents_link_cart(client):
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    link_cart = schemas["DecideAnswer"]["properties"]["link_cart"]
    assert link_cart["enum"] == ["shopify", "woocommerce"]
    assert "link_cart" not in schemas["DecideAnswer"].get("required", [])
    integration = schemas["PlatformIntegration"]["properties"]
    assert set(integration) == {"webhook_secret", "link_cart"}
