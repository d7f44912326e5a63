"""Every delivery verifies with the Standard Webhooks reference library (``standardwebhooks`` from
PyPI), the way a store's developer would check it: real deliveries to a local receiver, each
verified with ``Webhook(site's webhook_secret).verify(body, headers)``."""

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.funnel.helpers import identify, place_order
from tests.helpers import time_passes
from widget_server.extensions import db
from widget_server.models import WebhookDelivery
from widget_server.services.platform import webhooks

standardwebhooks = pytest.importorskip("standardwebhooks")
Webhook = standardwebhooks.Webhook
WebhookVerificationError = standardwebhooks.WebhookVerificationError


@pytest.fixture
def hooked_site(admin, make_site, webhook_receiver):
    """A site whose ``settings.webhook`` takes every event at the test receiver; its JSON with
    both secrets."""
    site = make_site(webhook={"url": webhook_receiver.url})
    return admin.get(f"/api/v1/admin/sites/{site['id']}").json


def _stage_changes(client, site, runner, visitor="visitor-stdhook1") -> None:
    """Two stage changes (a first identify, then an order), delivered."""
    identify(client, site, {"visitor_id": visitor, "customer_id": "c-9"})
    place_order(site, visitor, "12.00")
    assert "delivered 2" in runner.invoke(args=["deliver-webhooks"]).output


def test_each_delivery_verifies_with_the_reference_library(
    client, runner, hooked_site, webhook_receiver
):
    _stage_changes(client, hooked_site, runner)

    verifier = Webhook(hooked_site["webhook_secret"])
    bodies = [verifier.verify(body, headers) for headers, body in webhook_receiver.received]

    assert [(b["type"], b["data"]["to_stage"]) for b in bodies] == [
        ("stage.changed", "new_visitor"),
        ("stage.changed", "customer"),
    ]
    ids = [headers["webhook-id"] for headers, _ in webhook_receiver.received]
    assert len(set(ids)) == 2 and all(i.startswith("msg_") and "." not in i for i in ids)
    for headers, _ in webhook_receiver.received:
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
        assert headers["webhook-signature"].startswith("v1,")
        assert headers["Content-Type"] == "application/json"


def test_the_secret_is_whsec_and_base64_of_at_least_24_bytes(hooked_site):
    secret = hooked_site["webhook_secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24
    assert secret != hooked_site["secret"]


def test_the_library_refuses_a_tampered_body_and_an_old_timestamp(
    client, runner, hooked_site, webhook_receiver
):
    """The test's own sanity check: the library does refuse what it must."""
    _stage_changes(client, hooked_site, runner)
    headers, body = webhook_receiver.received[0]
    verifier = Webhook(hooked_site["webhook_secret"])

    tampered = body.replace(b"new_visitor", b"vip_visitor")
    with pytest.raises(WebhookVerificationError):
        verifier.verify(tampered, headers)

    # Correctly signed, but an hour old: a replayed capture.
    an_hour_ago = int(time.time()) - 3600
    replayed = {
        **headers,
        "webhook-timestamp": str(an_hour_ago),
        "webhook-signature": webhooks.standard_signature(
            hooked_site["webhook_secret"], headers["webhook-id"], an_hour_ago, body
        ),
    }
    with pytest.raises(WebhookVerificationError, match="too old"):
        verifier.verify(body, replayed)

    with pytest.raises(WebhookVerificationError):
        Webhook(hooked_site["webhook_secret"]).verify(body, {**headers, "webhook-id": "msg_x"})
    other_secret = "whsec_" + base64.b64encode(b"\x01" * 32).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other_secret).verify(body, headers)


def test_our_signature_is_the_librarys(hooked_site):
    body = b'{"type":"x.y","timestamp":"2026-12-06T10:00:00Z","data":{}}'
    at = datetime(2026, 12, 6, 10, 0, 5, tzinfo=UTC)
    ours = webhooks.standard_signature(
        hooked_site["webhook_secret"], "msg_abc", int(at.timestamp()), body
    )
    assert ours == Webhook(hooked_site["webhook_secret"]).sign("msg_abc", at, body)


def test_retries_and_redeliveries_carry_the_same_webhook_id_and_body(
    admin, client, runner, hooked_site, webhook_receiver
):
    identify(client, hooked_site, {"visitor_id": "visitor-stdhook2"})
    webhook_receiver.status = 503
    runner.invoke(args=["deliver-webhooks"])
    time_passes(timedelta(seconds=10), "webhook_deliveries")
    webhook_receiver.status = 200
    assert "delivered 1" in runner.invoke(args=["deliver-webhooks"]).output
    [delivery] = db.session.scalars(select(WebhookDelivery)).all()
    answer = admin.post(f"/api/v1/admin/webhook-deliveries/{delivery.id}/redeliver")
    assert answer.status_code == 202, answer.json
    assert "delivered 1" in runner.invoke(args=["deliver-webhooks"]).output

    verifier = Webhook(hooked_site["webhook_secret"])
    for headers, body in webhook_receiver.received:
        verifier.verify(body, headers)
    assert len(webhook_receiver.received) == 3
    assert len({headers["webhook-id"] for headers, _ in webhook_receiver.received}) == 1
    assert len({body for _, body in webhook_receiver.received}) == 1
    assert len({headers["X-Funnelcake-Delivery"] for headers, _ in webhook_receiver.received}) == 2


def test_after_a_rotation_both_secrets_verify_for_a_day(
    admin, client, runner, hooked_site, webhook_receiver
):
    site_path = f"/api/v1/admin/sites/{hooked_site['id']}"
    old_secret = hooked_site["webhook_secret"]
    rotated = admin.post(f"{site_path}/webhook-secret/rotate")
    assert rotated.status_code == 200, rotated.json
    new_secret = rotated.json["webhook_secret"]
    assert new_secret != old_secret and new_secret.startswith("whsec_")
    assert admin.get(site_path).json["webhook_secret"] == new_secret
    until = datetime.fromisoformat(rotated.json["previous_secret_valid_until"])
    assert timedelta(hours=23) < until - datetime.now(UTC) <= timedelta(hours=24)

    identify(client, hooked_site, {"visitor_id": "visitor-rotate01"})
    runner.invoke(args=["deliver-webhooks"])
    headers, body = webhook_receiver.received[-1]
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new_secret).verify(body, headers)
    Webhook(old_secret).verify(body, headers)

    time_passes(timedelta(hours=25), "sites")
    assert admin.get(site_path).json["webhook_secret"] == new_secret
    identify(client, hooked_site, {"visitor_id": "visitor-rotate02"})
    runner.invoke(args=["deliver-webhooks"])
    headers, body = webhook_receiver.received[-1]
    assert len(headers["webhook-signature"].split(" ")) == 1
    Webhook(new_secret).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(body, headers)


def test_a_slack_message_is_signed_all_the_same(
    admin, make_site, make_campaign, client, runner, webhook_receiver
):
    from tests.helpers import decide, event, send_events

    site = make_site(response_webhook={"url": webhook_receiver.url, "format": "slack"})
    site = admin.get(f"/api/v1/admin/sites/{site['id']}").json
    campaign = make_campaign(site)
    variant_id = campaign["variants"][0]["id"]
    assert decide(client, site, "visitor-slacksig").json["campaigns"]
    done = event("complete", "visitor-slacksig", campaign["id"], variant_id)
    assert send_events(client, site, [done]).status_code == 202

    assert "delivered 1" in runner.invoke(args=["deliver-webhooks"]).output

    [(headers, body)] = webhook_receiver.received
    assert set(Webhook(site["webhook_secret"]).verify(body, headers)) == {"text"}
    assert json.loads(body)["text"].startswith("*Survey*")
