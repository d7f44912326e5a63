"""Outgoing webhooks (here the funnel's stage changes): recorded in the request's transaction,
delivered signed outside it by ``funnelcake deliver-webhooks``, retried once due again."""

import hashlib
import hmac
import json
from datetime import timedelta

from sqlalchemy import select

from tests.funnel.helpers import identify, place_order
from tests.helpers import time_passes
from widget_server.extensions import db
from widget_server.models import WebhookDelivery


def test_stage_change_webhook_is_recorded_then_delivered_signed(
    admin, client, runner, make_site, webhook_receiver
):
    site = make_site(stage_webhook_url=webhook_receiver.url)
    secret = admin.get(f"/api/v1/admin/sites/{site['id']}").json["secret"]
    identify(
        client,
        site,
        {
            "visitor_id": "visitor-hooked1",
            "customer_id": "c-1",
            "email": "a@shop.example",
            "email_consent": True,
        },
    )
    place_order(site, "visitor-hooked1", "10.00")

    pending = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [(d.status, d.event, d.payload["data"]["to_stage"]) for d in pending] == [
        ("pending", "stage.changed", "new_visitor"),
        ("pending", "stage.changed", "customer"),
    ]
    assert webhook_receiver.received == []  # nothing was sent inside the requests

    result = runner.invoke(args=["deliver-webhooks"])

    assert result.exit_code == 0, result.output
    assert "delivered 2" in result.output
    assert len(webhook_receiver.received) == 2
    headers, body = webhook_receiver.received[1]
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Funnelcake-Signature"] == expected  # the older header, still sent
    assert headers["X-Funnelcake-Event"] == "stage.changed"
    payload = json.loads(body)
    assert payload["type"] == "stage.changed"
    assert payload["timestamp"].endswith("Z")
    data = payload["data"]
    assert (data["visitor_id"], data["customer_id"], data["email"]) == (
        "visitor-hooked1",
        "c-1",
        "a@shop.example",
    )
    assert (data["from_stage"], data["to_stage"], data["cause"]) == (
        "new_visitor",
        "customer",
        "order",
    )
    db.session.expire_all()
    delivered = db.session.scalars(select(WebhookDelivery)).all()
    assert {(d.status, d.next_attempt_at) for d in delivered} == {("delivered", None)}
    assert runner.invoke(args=["deliver-webhooks"]).output.startswith("delivered 0")


def test_failed_delivery_is_retried_once_its_backoff_has_passed(
    admin, client, runner, make_site, webhook_receiver
):
    site = make_site(stage_webhook_url=webhook_receiver.url)
    identify(client, site, {"visitor_id": "visitor-retry01"})
    webhook_receiver.status = 500

    assert "retrying 1" in runner.invoke(args=["deliver-webhooks"]).output
    db.session.expire_all()
    delivery = db.session.scalar(select(WebhookDelivery))
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 1, "HTTP 500")
    # 5 s, give or take the jitter's 20 %, counted from the answer: the gap from the attempt's
    # start adds the attempt's own time (a local receiver's, well under a second)
    wait_s = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert 4 <= wait_s <= 6 + 1

    webhook_receiver.status = 204
    assert "delivered 0" in runner.invoke(args=["deliver-webhooks"]).output  # not due yet
    time_passes(timedelta(seconds=6), "webhook_deliveries")
    assert "delivered 1" in runner.invoke(args=["deliver-webhooks"]).output
    assert len(webhook_receiver.received) == 2


def test_no_webhook_without_a_url(client, make_site):
    site = make_site()
    identify(client, site, {"visitor_id": "visitor-nohook1"})
    assert db.session.scalar(select(WebhookDelivery)) is None
