"""The retry schedule: exponential backoff with jitter over more than a day, only due deliveries
sent, a 2xx ends it, a 410 Gone stops it, the last failure marks it ``failed``; tested on aged
rows (``time_passes`` moves the deliveries' times into the past, as the hours would)."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.helpers import statements_sent, time_passes
from widget_server.extensions import db
from widget_server.models import WebhookDelivery
from widget_server.models.types import utcnow
from widget_server.services.platform import webhooks
from widget_server.services.platform.webhooks import Answer, outcome_of


@pytest.fixture
def queue(app, make_site, webhook_receiver):
    """Queue ``n`` deliveries of a test event to the receiver (committed); their ids."""
    site = make_site()

    def make(n=1, url=None):
        items = [({"n": i}, utcnow()) for i in range(n)]
        webhooks.enqueue(site["id"], [url or webhook_receiver.url], "stage.changed", items)
        db.session.commit()
        return list(db.session.scalars(select(WebhookDelivery.id).order_by(WebhookDelivery.id)))

    return make


def the_delivery() -> WebhookDelivery:
    db.session.expire_all()
    return db.session.scalars(select(WebhookDelivery)).one()


def wait_until_due() -> timedelta:
    """Age the deliveries until the next one is due (as the time would pass); by how much."""
    delivery = the_delivery()
    wait = delivery.next_attempt_at - utcnow() + timedelta(seconds=1)
    time_passes(wait, "webhook_deliveries")
    return wait


def test_the_schedule_is_svixs_over_more_than_27_hours():
    assert webhooks.RETRY_DELAYS_S == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert webhooks.MAX_ATTEMPTS == 8
    assert timedelta(seconds=sum(webhooks.RETRY_DELAYS_S)) > timedelta(hours=27, minutes=30)


@pytest.mark.parametrize("attempts", range(1, 8))
def test_each_delay_is_the_schedules_within_20_percent(attempts):
    now = utcnow()
    waits = {
        (outcome_of(attempts, Answer("HTTP 500", 500), now)["b_next_attempt_at"] - now)
        for _ in range(50)
    }
    planned = webhooks.RETRY_DELAYS_S[attempts - 1]
    assert all(0.8 * planned <= w.total_seconds() <= 1.2 * planned for w in waits)
    assert len(waits) > 1  # jittered, not one fixed delay


def test_retry_after_pushes_the_next_attempt_later_never_sooner():
    now = utcnow()
    later = outcome_of(1, Answer("HTTP 429", 429, retry_after_s=120), now)
    assert later["b_next_attempt_at"] - now == timedelta(seconds=120)
    sooner = outcome_of(3, Answer("HTTP 503", 503, retry_after_s=1), now)
    assert sooner["b_next_attempt_at"] - now >= timedelta(seconds=0.8 * 1800)
    capped = outcome_of(1, Answer("HTTP 503", 503, retry_after_s=10**9), now)
    assert capped["b_next_attempt_at"] - now == timedelta(hours=24)


def test_a_receiver_down_for_an_hour_gets_the_message_once_after_it_recovers(
    queue, webhook_receiver
):
    queue()
    webhook_receiver.status = 503
    down_for = timedelta()
    while down_for < timedelta(hours=1):
        assert webhooks.deliver_pending().retrying == 1
        down_for += wait_until_due()
    failed_attempts = len(webhook_receiver.received)
    assert failed_attempts == 4  # at 0 s, 5 s, 5 min and 35 min; the next is 2 h later

    webhook_receiver.status = 200
    assert webhooks.deliver_pending().delivered == 1
    for _ in range(3):  # hours go by: nothing more is sent
        time_passes(timedelta(hours=12), "webhook_deliveries")
        assert webhooks.deliver_pending().attempted == 0

    assert len(webhook_receiver.received) == failed_attempts + 1
    assert len({headers["webhook-id"] for headers, _ in webhook_receiver.received}) == 1
    assert len({body for _, body in webhook_receiver.received}) == 1
    delivery = the_delivery()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
        "delivered",
        5,
        None,
    )
    assert delivery.last_error is None


def test_a_delivery_failing_every_attempt_for_27_hours_ends_failed(queue, webhook_receiver):
    queue()
    webhook_receiver.status = 500
    elapsed = timedelta()
    while the_delivery().status == "pending":
        webhooks.deliver_pending()
        if the_delivery().status == "pending":
            elapsed += wait_until_due()

    delivery = the_delivery()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("failed", 8, "HTTP 500")
    assert delivery.next_attempt_at is None
    assert elapsed > timedelta(hours=27) * 0.8
    assert len(webhook_receiver.received) == 8
    time_passes(timedelta(days=3), "webhook_deliveries")
    assert webhooks.deliver_pending().attempted == 0


def test_410_gone_stops_the_retries(queue, webhook_receiver):
    queue()
    webhook_receiver.status = 410

    assert webhooks.deliver_pending().failed == 1

    delivery = the_delivery()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.last_error.startswith("HTTP 410 Gone")


def test_only_due_deliveries_are_sent(queue, webhook_receiver):
    first, second = queue(2)
    db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == second)
        .values(next_attempt_at=utcnow() + timedelta(minutes=5))
    )
    db.session.commit()

    assert webhooks.deliver_pending().delivered == 1

    [(headers, _)] = webhook_receiver.received
    assert headers["X-Funnelcake-Delivery"] == str(first)


def test_a_batch_is_claimed_read_and_recorded_in_one_statement_each(queue, webhook_receiver):
    queue(5)

    with statements_sent() as sent:
        assert webhooks.deliver_pending().delivered == 5

    touching = [s for s in sent if "webhook_deliveries" in s.sql.lower()]
    kinds = [s.sql.lstrip().split(None, 1)[0].upper() for s in touching]
    # The claim, the read of the claimed rows (with their sites' keys), one executemany of
    # the outcomes, then the claim that finds nothing more.
    assert kinds == ["UPDATE", "SELECT", "UPDATE", "UPDATE"], [s.sql for s in touching]
    assert touching[2].rows == 5


def test_a_claimed_delivery_is_leased_to_its_sender(queue, webhook_receiver):
    """A second sender meanwhile (another worker) finds nothing to send."""
    queue()
    claimed = webhooks._claim(10, webhooks.TIMEOUT_S, utcnow())
    assert [c.attempts for c in claimed] == [1]

    assert webhooks.deliver_pending().attempted == 0
    assert webhook_receiver.received == []
    # A sender that died leaves it to the next once the lease is over.
    time_passes(timedelta(minutes=10), "webhook_deliveries")
    assert webhooks.deliver_pending().delivered == 1
    assert the_delivery().attempts == 2
