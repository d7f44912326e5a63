"""The admin API's delivery log (``GET sites/<id>/webhook-deliveries``), redelivery (``POST
webhook-deliveries/<id>/redeliver``) and secret rotation, behind the bearer token."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from widget_server.extensions import db
from widget_server.models import WebhookDelivery
from widget_server.models.types import utcnow
from widget_server.services.platform import webhooks


@pytest.fixture
def logged(app, make_site, webhook_receiver):
    """A site with ``n`` deliveries of test events to the receiver (``logged(n)``)."""
    site = make_site()

    def make(n=3, event="stage.changed"):
        items = [({"n": i}, utcnow()) for i in range(n)]
        webhooks.enqueue(site["id"], [webhook_receiver.url], event, items)
        db.session.commit()
        return site

    return make


def test_the_log_lists_a_sites_deliveries_newest_first_a_page_at_a_time(admin, logged):
    site = logged(5)
    path = f"/api/v1/admin/sites/{site['id']}/webhook-deliveries"

    first = admin.get(f"{path}?limit=2").json
    second = admin.get(f"{path}?limit=2&before={first['next_before']}").json
    last = admin.get(f"{path}?limit=2&before={second['next_before']}").json

    pages = [[d["payload"]["data"]["n"] for d in page["deliveries"]] for page in (first, second)]
    assert pages == [[4, 3], [2, 1]]
    assert ([d["payload"]["data"]["n"] for d in last["deliveries"]], last["next_before"]) == (
        [0],
        None,
    )
    shown = first["deliveries"][0]
    assert shown["webhook_id"].startswith("msg_")
    assert (shown["event"], shown["status"], shown["attempts"], shown["max_attempts"]) == (
        "stage.changed",
        "pending",
        0,
        8,
    )
    assert shown["next_attempt_at"] and shown["delivered_at"] is None


def test_the_log_filters_by_status_and_shows_only_the_sites_own(admin, runner, logged, make_site):
    site = logged(2)
    other = make_site("Other shop")
    runner.invoke(args=["deliver-webhooks"])
    logged(1)

    path = f"/api/v1/admin/sites/{site['id']}/webhook-deliveries"
    assert [d["status"] for d in admin.get(f"{path}?status=delivered").json["deliveries"]] == [
        "delivered",
        "delivered",
    ]
    assert len(admin.get(f"{path}?status=pending").json["deliveries"]) == 1
    empty = admin.get(f"/api/v1/admin/sites/{other['id']}/webhook-deliveries").json
    assert empty == {"deliveries": [], "next_before": None}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("before=x", "before"),
        ("status=lost", "status"),
    ],
)
def test_a_bad_log_query_is_refused_naming_it(admin, logged, query, field):
    site = logged(1)
    answer = admin.get(f"/api/v1/admin/sites/{site['id']}/webhook-deliveries?{query}")
    assert answer.status_code == 400
    assert field in answer.json["error"]["fields"]


def test_redelivering_a_delivered_message_queues_a_copy_with_its_id_and_body(
    admin, runner, logged, webhook_receiver
):
    logged(1)
    runner.invoke(args=["deliver-webhooks"])
    original = db.session.scalars(select(WebhookDelivery)).one()

    answer = admin.post(f"/api/v1/admin/webhook-deliveries/{original.id}/redeliver")

    assert answer.status_code == 202, answer.json
    copy = answer.json
    assert copy["id"] != original.id
    assert (copy["webhook_id"], copy["payload"], copy["url"]) == (
        original.message_id,
        original.payload,
        original.url,
    )
    assert (copy["status"], copy["attempts"]) == ("pending", 0)
    db.session.expire_all()
    assert db.session.get(WebhookDelivery, original.id).status == "delivered"  # its record stays
    assert "delivered 1" in runner.invoke(args=["deliver-webhooks"]).output
    first, again = webhook_receiver.received
    assert first[1] == again[1] and first[0]["webhook-id"] == again[0]["webhook-id"]


def test_redelivering_a_pending_message_makes_it_due_now(admin, runner, logged, webhook_receiver):
    logged(1)
    webhook_receiver.status = 500
    runner.invoke(args=["deliver-webhooks"])
    waiting = db.session.scalars(select(WebhookDelivery)).one()
    assert waiting.next_attempt_at > utcnow() + timedelta(seconds=3)

    answer = admin.post(f"/api/v1/admin/webhook-deliveries/{waiting.id}/redeliver")

    assert answer.status_code == 202
    assert answer.json["id"] == waiting.id
    webhook_receiver.status = 200
    assert "delivered 1" in runner.invoke(args=["deliver-webhooks"]).output
    assert db.session.scalar(select(WebhookDelivery.attempts)) == 2


def test_unknown_ids_are_404_and_every_call_needs_the_token(admin, client, logged):
    site = logged(1)
    delivery_id = db.session.scalar(select(WebhookDelivery.id))
    assert admin.post("/api/v1/admin/webhook-deliveries/999999/redeliver").status_code == 404
    assert admin.get("/api/v1/admin/sites/999999/webhook-deliveries").status_code == 404
    assert admin.post("/api/v1/admin/sites/999999/webhook-secret/rotate").status_code == 404
    for method, path in [
        ("get", f"/api/v1/admin/sites/{site['id']}/webhook-deliveries"),
        ("post", f"/api/v1/admin/webhook-deliveries/{delivery_id}/redeliver"),
        ("post", f"/api/v1/admin/sites/{site['id']}/webhook-secret/rotate"),
    ]:
        assert getattr(client, method)(path).status_code == 401
    assert db.session.scalar(select(db.func.count()).select_from(WebhookDelivery)) == 1


def test_the_webhook_secret_is_shown_by_get_one_site_only(admin, make_site):
    created = make_site()
    assert created["webhook_secret"].startswith("whsec_")
    shown = admin.get(f"/api/v1/admin/sites/{created['id']}").json
    assert shown["webhook_secret"] == created["webhook_secret"]
    listed = admin.get("/api/v1/admin/sites").json["sites"]
    assert all("webhook_secret" not in s and "secret" not in s for s in listed)
