"""Coupon webhooks: ``coupon.won`` when a spin hands out a code (recorded in the spin's write, the
subscription read from the cached site configuration) and ``coupon.redeemed`` when an order
redeems one, for sites whose ``settings.webhook`` subscribes to them."""

import json

import pytest
from sqlalchemy import select

from tests.helpers import decide, statements_sent
from tests.rewards.conftest import pool_slice, slice_
from tests.rewards.helpers import decided_spin, post_order, spin
from widget_server.extensions import db
from widget_server.models import WebhookDelivery

COUPON_EVENTS = ["coupon.won", "coupon.redeemed"]


@pytest.fixture
def wheel_shop(make_site, make_pool, make_wheel, webhook_receiver):
    """``wheel_shop(events, slices=...)``: a site with a running wheel (by default always a code
    of a pool of three) whose webhook takes ``events`` (None: no webhook)."""

    def make(events=COUPON_EVENTS, slices=None, **wheel):
        hook = {"webhook": {"url": webhook_receiver.url, "events": events}} if events else {}
        site = make_site(**hook)
        pool = make_pool(site, codes=["WIN-1", "WIN-2", "WIN-3"])
        slices = slices or [pool_slice("10% off", 1, pool["id"]), slice_("No", 0)]
        return site, make_wheel(site, slices, **wheel)

    return make


def deliveries() -> list[WebhookDelivery]:
    db.session.expire_all()
    return db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()


def test_a_spin_that_hands_out_a_code_announces_coupon_won(
    client, runner, wheel_shop, webhook_receiver
):
    site, wheel = wheel_shop()
    won = decided_spin(client, site, wheel["id"], "visitor-winner01")
    assert won.status_code == 200, won.json

    [delivery] = deliveries()
    assert (delivery.event, delivery.status) == ("coupon.won", "pending")
    assert "delivered 1" in runner.invoke(args=["deliver-webhooks"]).output
    [(headers, body)] = webhook_receiver.received
    assert headers["X-Funnelcake-Event"] == "coupon.won"
    payload = json.loads(body)
    assert payload["type"] == "coupon.won"
    data = payload["data"]
    assert data["code"] == won.json["code"]
    assert (data["site_id"], data["campaign_id"], data["variant_id"]) == (
        site["id"],
        wheel["id"],
        wheel["variants"][0]["id"],
    )
    assert (data["visitor_id"], data["slice_index"], data["label"]) == (
        "visitor-winner01",
        0,
        "10% off",
    )
    assert (data["email"], data["expires_at"]) == (None, None)


@pytest.mark.parametrize("consent", [True, False])
def test_coupon_won_carries_the_email_only_with_consent(client, wheel_shop, consent):
    site, wheel = wheel_shop(email_capture={"enabled": True, "required": True})
    won = decided_spin(
        client, site, wheel["id"], email="ann+spin@shop.example", email_consent=consent
    )
    assert won.status_code == 200, won.json

    [delivery] = deliveries()
    assert delivery.payload["data"]["email"] == ("ann+spin@shop.example" if consent else None)


def test_a_spin_without_a_code_and_a_repeated_spin_announce_nothing(client, wheel_shop):
    site, wheel = wheel_shop(slices=[slice_("No luck", 1)])
    assert decided_spin(client, site, wheel["id"]).json["code"] is None
    assert deliveries() == []

    site, wheel = wheel_shop()
    first = decided_spin(client, site, wheel["id"], "visitor-twice001").json
    again = spin(client, site, wheel["id"], "visitor-twice001").json
    assert (again["code"], again["repeated"]) == (first["code"], True)
    assert [d.event for d in deliveries()] == ["coupon.won"]


def test_a_site_that_did_not_subscribe_records_nothing(client, wheel_shop):
    site, wheel = wheel_shop(events=["coupon.redeemed"])
    assert decided_spin(client, site, wheel["id"]).json["code"]
    site, wheel = wheel_shop(events=None)
    assert decided_spin(client, site, wheel["id"]).json["code"]

    assert deliveries() == []


@pytest.mark.parametrize("subscribed", [True, False], ids=["subscribed", "not-subscribed"])
def test_the_spin_reads_no_settings_and_inserts_once(make_app, wheel_shop, subscribed):
    site, wheel = wheel_shop(events=COUPON_EVENTS if subscribed else ["stage.changed"])
    client = make_app(CONFIG_CACHE_TTL_S=60.0).test_client()  # the site config kept, as served
    assert decide(client, site).status_code == 200

    with statements_sent() as sent:
        assert spin(client, site, wheel["id"]).json["code"]

    sql = [s.sql.lower() for s in sent]
    assert not any("from sites" in s for s in sql), "the subscription comes from the cache"
    inserts = [s for s in sql if s.lstrip().startswith("insert into webhook_deliveries")]
    assert len(inserts) == (1 if subscribed else 0)


def test_an_order_redeeming_a_won_code_announces_coupon_redeemed(
    client, runner, wheel_shop, webhook_receiver
):
    site, wheel = wheel_shop()
    code = decided_spin(client, site, wheel["id"], "visitor-buyer001").json["code"]
    order = {"order_id": "A-1", "total": "80.00", "currency": "EUR", "coupon_code": code}
    assert post_order(client, site, {**order, "customer_id": "c-7"}).status_code == 201

    assert [d.event for d in deliveries()] == ["coupon.won", "coupon.redeemed"]
    runner.invoke(args=["deliver-webhooks"])
    redeemed = json.loads(webhook_receiver.received[-1][1])
    assert redeemed["type"] == "coupon.redeemed"
    assert redeemed["data"] == {
        "site_id": site["id"],
        "code": code,
        "order_id": "A-1",
        "customer_id": "c-7",
        "visitor_id": "visitor-buyer001",  # the code's winner: the order named no visitor
        "campaign_id": wheel["id"],
        "variant_id": wheel["variants"][0]["id"],
        "total": "80.00",
        "currency": "EUR",
        "ordered_at": redeemed["data"]["ordered_at"],
    }


def test_an_order_redeeming_the_buyers_fixed_code_announces_it(client, wheel_shop):
    site, wheel = wheel_shop(
        slices=[slice_("Free shipping", 1, {"type": "code", "code": "SHIP"}), slice_("No", 0)]
    )
    assert decided_spin(client, site, wheel["id"], "visitor-fixed001").json["code"] == "SHIP"
    order = {"order_id": "B-1", "total": 20, "currency": "EUR", "coupon_code": "SHIP"}

    assert post_order(client, site, {**order, "visitor_id": "visitor-fixed001"}).status_code == 201

    redeemed = deliveries()[-1]
    assert (redeemed.event, redeemed.payload["data"]["code"]) == ("coupon.redeemed", "SHIP")


def test_orders_that_redeem_nothing_announce_nothing(client, wheel_shop):
    site, wheel = wheel_shop(events=["coupon.redeemed"])
    plain = {"order_id": "C-1", "total": 10, "currency": "EUR"}
    assert post_order(client, site, plain).status_code == 201
    # Someone else's fixed code: recorded, not redeemed.
    site, wheel = wheel_shop(
        events=["coupon.redeemed"],
        slices=[slice_("Ship", 1, {"type": "code", "code": "FIX"}), slice_("No", 0)],
    )
    assert decided_spin(client, site, wheel["id"], "visitor-winner02").json["code"] == "FIX"
    other = {"order_id": "C-2", "total": 10, "currency": "EUR", "coupon_code": "FIX"}
    answer = post_order(client, site, {**other, "visitor_id": "visitor-stranger"})
    assert answer.json["coupon"]["accepted"] is False

    assert deliveries() == []
