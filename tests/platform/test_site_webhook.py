"""A site's ``settings.webhook``: one URL for every event it subscribes to, validated like the
other webhook URLs, beside the per-purpose URLs (``stage_webhook_url``, ``response_webhook``,
a campaign's ``ab.webhook_url``), which keep working; one URL never gets one message twice."""

import pytest
from sqlalchemy import select

from tests.funnel.helpers import identify
from tests.helpers import decide, event, send_events
from widget_server.extensions import db
from widget_server.models import WebhookDelivery
from widget_server.services.ingest.response_webhooks import queue_partials
from widget_server.vocabulary import WEBHOOK_EVENTS

HOOK = "https://hooks.shop.example/all"


def deliveries() -> list[WebhookDelivery]:
    db.session.expire_all()
    return db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()


@pytest.mark.parametrize(
    ("hook", "field", "message"),
    [
        ({"url": "http://10.0.0.5/hook"}, "url", "not a public address"),
        ({"url": "http://169.254.169.254/latest"}, "url", "not a public address"),
        ({"url": "http://localhost:8080/"}, "url", "this server"),
        ({"url": "ftp://hooks.example/x"}, "url", ""),
        ({"events": ["coupon.won"]}, "url", "required"),
        ({"url": HOOK, "events": ["coupon.lost"]}, "events.0", "Must be one of"),
        ({"url": HOOK, "events": ["coupon.won", "visitor.stage_changed"]}, "events.1", ""),
        ({"url": HOOK, "events": []}, "events", "at least one"),
        ({"url": HOOK, "events": "coupon.won"}, "events", ""),
        ({"url": HOOK, "secret": "whsec_x"}, "secret", ""),
    ],
)
def test_bad_site_webhook_is_refused_naming_the_field(admin, make_site, hook, field, message):
    site = make_site()

    answer = admin.patch(f"/api/v1/admin/sites/{site['id']}", json={"settings": {"webhook": hook}})

    assert answer.status_code == 400, answer.json
    errors = answer.json["error"]["fields"]
    name = f"settings.webhook.{field}"
    assert name in errors, errors
    assert message in " ".join(errors[name])
    assert "webhook" not in admin.get(f"/api/v1/admin/sites/{site['id']}").json["settings"]


def test_site_webhook_is_stored_with_every_event_by_default_and_turned_off_with_null(
    admin, make_site
):
    site = make_site()
    path = f"/api/v1/admin/sites/{site['id']}"

    stored = admin.patch(path, json={"settings": {"webhook": {"url": HOOK}}}).json["settings"]
    assert stored["webhook"] == {"url": HOOK, "events": sorted(WEBHOOK_EVENTS)}
    picked = {"url": HOOK, "events": ["stage.changed", "coupon.won", "coupon.won"]}
    stored = admin.patch(path, json={"settings": {"webhook": picked}}).json["settings"]
    assert stored["webhook"]["events"] == ["coupon.won", "stage.changed"]
    off = admin.patch(path, json={"settings": {"webhook": None}}).json["settings"]
    assert off["webhook"] is None


def test_stage_changes_go_to_both_urls_and_once_to_one_url(client, make_site):
    both = make_site(stage_webhook_url="https://hooks.shop.example/stages", webhook={"url": HOOK})
    identify(client, both, {"visitor_id": "visitor-both0001"})
    assert sorted(d.url for d in deliveries()) == [HOOK, "https://hooks.shop.example/stages"]

    same = make_site(stage_webhook_url=HOOK, webhook={"url": HOOK})
    identify(client, same, {"visitor_id": "visitor-same0001"})
    assert [d.url for d in deliveries() if d.site_id == same["id"]] == [HOOK]

    unsubscribed = make_site(webhook={"url": HOOK, "events": ["coupon.won"]})
    identify(client, unsubscribed, {"visitor_id": "visitor-none0001"})
    assert [d for d in deliveries() if d.site_id == unsubscribed["id"]] == []


def test_responses_go_to_the_response_webhook_and_the_site_webhook_once_each(
    client, admin, make_site, make_campaign
):
    site = make_site(
        response_webhook={
            "url": "https://hooks.slack.example/T1",
            "format": "slack",
            "events": ["response.completed", "response.partial"],
        },
        webhook={"url": HOOK, "events": ["response.completed"]},
    )
    campaign = make_campaign(site)
    variant_id = campaign["variants"][0]["id"]
    assert decide(client, site, "visitor-resp0001").json["campaigns"]
    done = [
        event("answer", "visitor-resp0001", campaign["id"], variant_id, step_id="q1", value="x"),
        event("complete", "visitor-resp0001", campaign["id"], variant_id),
    ]
    assert send_events(client, site, done).status_code == 202
    assert send_events(client, site, done).json["accepted"] == 0  # a replay records nothing

    found = [(d.url, d.event, sorted(d.payload)) for d in deliveries()]
    assert found == [
        ("https://hooks.slack.example/T1", "response.completed", ["text"]),
        (HOOK, "response.completed", ["data", "timestamp", "type"]),
    ]
    keys = {d.delivery_key for d in deliveries()}
    assert len(keys) == 2 and None not in keys
    queue_partials()
    assert len(deliveries()) == 2
