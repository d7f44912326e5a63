"""Signed identify: with ``require_signed_identify`` on, only the shop's server can say which
customer a visitor is, so nobody holding the public site key can take over a customer's visitor
(their funnel stage, their campaigns, the code their wheel spin won)."""

import pytest
from sqlalchemy import select

from tests.api.helpers import decide, post_public
from widget_server.extensions import db
from widget_server.models import Visitor
from widget_server.services.platform.signatures import sign


def identify(client, site, visitor_id, customer_id=None, signature=None, **extra):
    body = {"visitor_id": visitor_id, **extra}
    if customer_id is not None:
        body["customer_id"] = customer_id
    if signature is not None:
        body["customer_signature"] = signature
    return post_public(client, site, "identify", body)


def spin(client, site, visitor_id, campaign_id):
    return post_public(client, site, "spin", {"visitor_id": visitor_id, "campaign_id": campaign_id})


def customer_of(visitor_key):
    return db.session.scalar(select(Visitor.customer_id).where(Visitor.visitor_key == visitor_key))


@pytest.fixture
def signed_site(make_site):
    return make_site(require_signed_identify=True)


def test_validly_signed_customer_id_is_linked(client, signed_site):
    signature = sign(signed_site["secret"], b"c-123")
    response = identify(client, signed_site, "visitor-0001", "c-123", signature)
    assert response.status_code == 200, response.json
    assert customer_of("visitor-0001") == "c-123"


@pytest.mark.parametrize(
    "make_signature",
    [
        lambda site: None,
        lambda site: sign(site["secret"], b"c-999"),  # another customer's
        lambda site: sign(site["site_key"], b"c-123"),  # with the public key
        lambda site: sign(site["secret"], b"c-123")[:-1],
        lambda site: sign(site["secret"], b"c-123").upper(),
        lambda site: sign(site["secret"], b"c-123").removeprefix("sha256="),
        lambda site: " " + sign(site["secret"], b"c-123") + " ",
        lambda site: sign(site["secret"], b"c-123") + "\n",
        lambda site: "\t" + sign(site["secret"], b"c-123"),
    ],
    ids=[
        "unsigned",
        "other-customer",
        "site-key",
        "shortened",
        "upper-case",
        "no-scheme",
        "space-padded",
        "trailing-newline",
        "leading-tab",
    ],
)
def test_unsigned_or_badly_signed_customer_id_is_refused(client, signed_site, make_signature):
    response = identify(client, signed_site, "visitor-0001", "c-123", make_signature(signed_site))
    assert response.status_code == 401
    assert "customer_signature" in response.json["error"]["fields"]
    assert customer_of("visitor-0001") is None


def test_identify_without_a_customer_id_needs_no_signature(client, signed_site):
    response = identify(client, signed_site, "visitor-0001", attributes={"tier": "gold"})
    assert response.status_code == 200, response.json


def test_a_wrong_signature_is_refused_even_where_signing_is_optional(client, make_site):
    site = make_site()
    assert identify(client, site, "visitor-0001", "c-1", "sha256=" + "0" * 64).status_code == 401
    assert identify(client, site, "visitor-0001", "c-1").status_code == 200  # unsigned: allowed


def test_nobody_takes_over_a_signed_customer_and_their_wheel_code(
    client, admin, signed_site, make_campaign
):
    site = signed_site
    pool = admin.post(f"/api/v1/admin/sites/{site['id']}/coupon-pools", json={"name": "P"}).json
    admin.post(f"/api/v1/admin/coupon-pools/{pool['id']}/import", json={"codes": ["WON-CODE"]})
    slices = [
        {"label": "10%", "color": "#111111", "weight": 1, "reward": {"type": "pool", "pool_id": 0}},
        {"label": "No", "color": "#222222", "weight": 0, "reward": {"type": "none"}},
    ]
    slices[0]["reward"]["pool_id"] = pool["id"]
    content = {"title": "Spin", "slices": slices}
    variants = [{"name": "A", "is_control": True, "content": content}]
    wheel = make_campaign(site, kind="wheel", name="Wheel", variants=variants)
    victim_signature = sign(site["secret"], b"c-victim")
    assert identify(client, site, "victim-0001", "c-victim", victim_signature).status_code == 200
    assert decide(client, site, "victim-0001").status_code == 200
    won = post_public(
        client, site, "spin", {"visitor_id": "victim-0001", "campaign_id": wheel["id"]}
    )
    assert won.json["code"] == "WON-CODE"

    # The attacker knows the customer id (ids are often counters) but not the site secret.
    assert identify(client, site, "attacker-01", "c-victim").status_code == 401
    assert decide(client, site, "attacker-01").status_code == 200
    spun = post_public(
        client, site, "spin", {"visitor_id": "attacker-01", "campaign_id": wheel["id"]}
    )
    assert "WON-CODE" not in spun.get_data(as_text=True)
    assert customer_of("attacker-01") is None


def test_a_padded_signature_is_refused_even_where_signatures_are_optional(client, make_site):
    # A signature that is sent must be exactly the one the shop's server makes.
    site = make_site()
    padded = f" {sign(site['secret'], b'c-123')} "
    response = identify(client, site, "visitor-0001", "c-123", padded)
    assert response.status_code == 401
    assert "customer_signature" in response.json["error"]["fields"]
    assert customer_of("visitor-0001") is None
