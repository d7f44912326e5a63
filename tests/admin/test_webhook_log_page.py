"""The admin page's webhooks page: receivers, the signing secret (rotate), the delivery log with a
Redeliver button per delivery (a form with the CSRF token), visitor and receiver text escaped."""

import re

import pytest
from sqlalchemy import func, select

from tests.admin.helpers import csrf_token
from widget_server.extensions import db
from widget_server.models import Site, WebhookDelivery
from widget_server.models.types import utcnow
from widget_server.services.platform import webhooks

HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="alert(1)">'


@pytest.fixture
def hooked(make_site, webhook_receiver):
    """A site whose webhook takes every event at the test receiver; ``hooked.queue(n)`` records
    ``n`` deliveries."""
    site = make_site(webhook={"url": webhook_receiver.url})

    def queue(n=1, data=None):
        items = [({"n": i, **(data or {})}, utcnow()) for i in range(n)]
        webhooks.enqueue(site["id"], [webhook_receiver.url], "coupon.won", items)
        db.session.commit()

    site["queue"] = queue
    return site


def page_of(page, site, query="") -> str:
    answer = page.get(f"/admin/sites/{site['id']}/webhooks{query}")
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def test_the_log_shows_each_delivery_and_the_nav_links_it(page, runner, hooked, webhook_receiver):
    hooked["queue"](2)
    webhook_receiver.status = 500
    runner.invoke(args=["deliver-webhooks"])
    message_ids = db.session.scalars(
        select(WebhookDelivery.message_id).order_by(WebhookDelivery.id)
    ).all()

    html = page_of(page, hooked)

    assert f'href="/admin/sites/{hooked["id"]}/webhooks" aria-current="page">Webhooks' in html
    rows = re.findall(r'<tr id="delivery-(\d+)">', html)
    assert [int(r) for r in rows] == sorted(map(int, rows), reverse=True)  # newest first
    for message_id in message_ids:
        assert message_id in html
    assert html.count("1 of 8") == 2 and html.count("HTTP 500") == 2
    assert html.count(">Redeliver</button>") == 2
    assert "Site webhook" in html and webhook_receiver.url in html
    campaigns_page = page.get(f"/admin/sites/{hooked['id']}/campaigns").get_data(as_text=True)
    assert f'href="/admin/sites/{hooked["id"]}/webhooks"' in campaigns_page


def test_visitor_and_receiver_text_is_escaped(page, runner, hooked, webhook_receiver):
    hooked["queue"](1, {"answer": HOSTILE})
    webhook_receiver.status = 500
    webhook_receiver.body = HOSTILE.encode()
    runner.invoke(args=["deliver-webhooks"])

    html = page_of(page, hooked)

    assert "<script>window.__pwned" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html  # in the body and the error
    assert html.count("&lt;script&gt;window.__pwned") == 2


def test_redeliver_queues_the_message_again_and_returns_to_the_log(page, runner, hooked):
    hooked["queue"](1)
    runner.invoke(args=["deliver-webhooks"])
    delivery = db.session.scalars(select(WebhookDelivery)).one()

    answer = page.post(f"/admin/webhook-deliveries/{delivery.id}/redeliver")

    assert answer.status_code == 302
    assert answer.headers["Location"].endswith(f"/admin/sites/{hooked['id']}/webhooks")
    html = page.get(answer.headers["Location"]).get_data(as_text=True)
    assert "queued again as delivery" in html
    copies = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [(d.status, d.message_id) for d in copies] == [
        ("delivered", delivery.message_id),
        ("pending", delivery.message_id),
    ]


def test_forms_without_the_csrf_token_change_nothing(page, hooked):
    hooked["queue"](1)
    delivery_id = db.session.scalar(select(WebhookDelivery.id))
    secret = db.session.scalar(select(Site.webhook_secret))

    for path in (
        f"/admin/webhook-deliveries/{delivery_id}/redeliver",
        f"/admin/sites/{hooked['id']}/webhook-secret/rotate",
    ):
        assert page.client.post(path).status_code == 400

    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1
    db.session.expire_all()
    assert db.session.scalar(select(Site.webhook_secret)) == secret


def test_rotating_the_secret_shows_the_new_one(page, hooked):
    before = page_of(page, hooked)
    old = re.search(r'class="webhook-secret">(whsec_[^<]+)<', before).group(1)

    answer = page.post(f"/admin/sites/{hooked['id']}/webhook-secret/rotate")

    assert answer.status_code == 302
    after = page.get(answer.headers["Location"]).get_data(as_text=True)
    new = re.search(r'class="webhook-secret">(whsec_[^<]+)<', after).group(1)
    assert new != old
    assert "previous secret" in after and "New signing secret" in after


def test_the_log_goes_back_a_page_at_a_time_and_filters_by_status(page, runner, hooked):
    hooked["queue"](webhooks.LOG_LIMIT + 1)

    first = page_of(page, hooked)
    older = re.search(r'href="([^"]*before=\d+[^"]*)">Older', first).group(1)
    second = page.get(older.replace("&amp;", "&")).get_data(as_text=True)

    assert len(re.findall(r'<tr id="delivery-', first)) == webhooks.LOG_LIMIT
    assert len(re.findall(r'<tr id="delivery-', second)) == 1
    assert "Older" not in second and "Newest" in second
    assert "No delivered deliveries yet." in page_of(page, hooked, "?status=delivered")
    ignored = page_of(page, hooked, "?status=lost&before=x")
    assert "not understood and are ignored: before, status" in ignored


def test_unknown_ids_are_404_and_the_page_needs_a_login(client, page, hooked):
    assert page.get("/admin/sites/999999/webhooks").status_code == 404
    assert page.post("/admin/webhook-deliveries/999999/redeliver").status_code == 404
    assert page.post("/admin/sites/999999/webhook-secret/rotate").status_code == 404
    page.post("/admin/logout")
    answer = client.get(f"/admin/sites/{hooked['id']}/webhooks")
    assert answer.status_code == 302 and "/admin/login" in answer.headers["Location"]
    token = csrf_token(client)
    refused = client.post(
        f"/admin/sites/{hooked['id']}/webhook-secret/rotate", data={"csrf_token": token}
    )
    assert refused.status_code == 302 and "/admin/login" in refused.headers["Location"]
