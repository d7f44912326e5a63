"""Response webhooks: a site's ``response_webhook`` announces completed survey responses (as the
applier folds them) and responses left unfinished (the worker's scan), signed, retried and sent
once, as JSON or as a Slack message."""

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tests.helpers import decide, event, send_events, statements_sent, survey_content, time_passes
from widget_server.extensions import db
from widget_server.models import Event, WebhookDelivery
from widget_server.services.ingest import applier
from widget_server.services.ingest.response_webhooks import queue_partials

STEPS = [
    {
        "id": "found",
        "type": "single_choice",
        "question": "How did you find us?",
        "options": [{"id": "search", "label": "Search"}, {"id": "friend", "label": "A friend"}],
    },
    {"id": "likely", "type": "scale", "question": "How likely are you to buy?"},
    {"id": "why", "type": "text", "question": "Why?"},
]


@pytest.fixture
def survey(admin, client, make_site, make_campaign, webhook_receiver):
    """Make a running survey on a site whose response webhook posts to the test receiver;
    ``survey(format="slack", events=[...])`` configures it. Returns the site (with its secret),
    the campaign and the variant."""

    def make(frequency=None, **hook):
        site = make_site()
        settings = {"response_webhook": {"url": webhook_receiver.url, **hook}}
        answer = admin.patch(f"/api/v1/admin/sites/{site['id']}", json={"settings": settings})
        assert answer.status_code == 200, answer.json
        site = admin.get(f"/api/v1/admin/sites/{site['id']}").json
        campaign = make_campaign(
            site,
            name="Checkout survey",
            variants=[{"name": "A", "is_control": True, "content": survey_content(STEPS)}],
            frequency=frequency or {},
        )
        return site, campaign, campaign["variants"][0]["id"]

    return make


def respond(client, site, campaign, variant_id, visitor, answers, complete=True):
    """Decide for ``visitor``, then send their answers ``{step_id: value}`` (and completion)."""
    assert decide(client, site, visitor).json["campaigns"]
    events = [
        event("answer", visitor, campaign["id"], variant_id, step_id=step, value=value)
        for step, value in answers.items()
    ]
    if complete:
        events.append(event("complete", visitor, campaign["id"], variant_id))
    answer = send_events(client, site, events)
    assert answer.status_code == 202, answer.json
    return events


def deliveries() -> list[WebhookDelivery]:
    db.session.expire_all()
    return db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()


def test_completed_response_is_posted_signed_with_answers_in_step_order(
    client, runner, survey, webhook_receiver
):
    site, campaign, variant_id = survey()
    answers = {"why": "Fast delivery", "found": "friend", "likely": 4}
    respond(client, site, campaign, variant_id, "visitor-complete1", answers)
    assert webhook_receiver.received == []  # recorded by the applier, sent by the worker

    assert "delivered 1" in runner.invoke(args=["deliver-webhooks"]).output

    [(headers, body)] = webhook_receiver.received
    expected = "sha256=" + hmac.new(site["secret"].encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Funnelcake-Signature"] == expected
    assert headers["X-Funnelcake-Event"] == "response.completed"
    envelope = json.loads(body)
    assert envelope["type"] == "response.completed"
    payload = envelope["data"]
    assert envelope["timestamp"] == payload["completed_at"].replace("+00:00", "Z")
    assert (payload["site_id"], payload["campaign_id"], payload["campaign_name"]) == (
        site["id"],
        campaign["id"],
        "Checkout survey",
    )
    assert (payload["variant_id"], payload["variant_name"]) == (variant_id, "A")
    assert (payload["visitor_id"], payload["round"]) == ("visitor-complete1", 1)
    assert payload["completed_at"]
    assert payload["answers"] == [
        {
            "step_id": "found",
            "question": "How did you find us?",
            "value": "friend",
            "answer": "A friend",
        },
        {"step_id": "likely", "question": "How likely are you to buy?", "value": 4, "answer": "4"},
        {"step_id": "why", "question": "Why?", "value": "Fast delivery", "answer": "Fast delivery"},
    ]


def test_slack_format_posts_one_question_answer_line_a_step(
    client, runner, survey, webhook_receiver
):
    site, campaign, variant_id = survey(format="slack")
    answers = {"found": "search", "why": "ok"}
    respond(client, site, campaign, variant_id, "visitor-slack001", answers)

    runner.invoke(args=["deliver-webhooks"])

    [(headers, body)] = webhook_receiver.received
    assert headers["X-Funnelcake-Signature"].startswith("sha256=")
    assert json.loads(body) == {
        "text": "*Checkout survey*: a response completed (variant A)\n"
        "How did you find us?: Search\n"
        "Why?: ok"
    }


def test_visitor_text_cannot_inject_slack_markup_or_lines(client, runner, survey, webhook_receiver):
    site, campaign, variant_id = survey(format="slack")
    hostile = (
        "<script>alert(1)</script> & <!channel> <https://evil.example|click>\nFake: line\u202e"
    )
    respond(client, site, campaign, variant_id, "visitor-hostile1", {"why": hostile})

    runner.invoke(args=["deliver-webhooks"])

    text = json.loads(webhook_receiver.received[0][1])["text"]
    assert text.splitlines()[1] == (
        "Why?: &lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;!channel&gt; "
        "&lt;https://evil.example|click&gt; Fake: line "
    )
    assert len(text.splitlines()) == 2
    assert "<" not in text and ">" not in text


def test_json_format_carries_visitor_text_as_written(client, runner, survey, webhook_receiver):
    site, campaign, variant_id = survey()
    respond(client, site, campaign, variant_id, "visitor-script01", {"why": "<script>x</script>"})

    runner.invoke(args=["deliver-webhooks"])

    [answer] = json.loads(webhook_receiver.received[0][1])["data"]["answers"]
    assert answer["value"] == answer["answer"] == "<script>x</script>"


def test_replayed_completion_and_reapplied_chunk_record_nothing_new(
    app, client, runner, survey, webhook_receiver, monkeypatch
):
    monkeypatch.setitem(app.config, "EVENTS_APPLY_INLINE", False)
    site, campaign, variant_id = survey()
    sent = respond(client, site, campaign, variant_id, "visitor-replay01", {"found": "search"})
    applier.apply_all()
    assert len(deliveries()) == 1

    assert send_events(client, site, sent).json["accepted"] == 0  # the same batch again
    again = [event("complete", "visitor-replay01", campaign["id"], variant_id)]  # a new id
    assert send_events(client, site, again).json["accepted"] == 1
    applier.apply_all()
    db.session.execute(update(Event).values(pending=True))  # every chunk applied once more
    db.session.commit()
    applier.apply_all()

    assert len(deliveries()) == 1
    runner.invoke(args=["deliver-webhooks"])
    runner.invoke(args=["deliver-webhooks"])
    assert len(webhook_receiver.received) == 1


def test_a_chunk_of_completions_records_its_deliveries_in_one_insert(
    app, client, survey, make_site, make_campaign, monkeypatch
):
    monkeypatch.setitem(app.config, "EVENTS_APPLY_INLINE", False)
    site, campaign, variant_id = survey()
    quiet = make_site(name="No webhook")
    quiet_campaign = make_campaign(quiet)
    for n in range(5):
        respond(client, site, campaign, variant_id, f"visitor-bulk{n:04d}", {"found": "search"})
        respond(
            client,
            quiet,
            quiet_campaign,
            quiet_campaign["variants"][0]["id"],
            f"visitor-quiet{n:03d}",
            {"q1": "search"},
        )

    with statements_sent() as sent:
        applier.apply_pending(1000)

    inserts = [s for s in sent if s.is_insert and "webhook_deliveries" in s.sql.lower()]
    assert len(inserts) == 1
    assert len(deliveries()) == 5  # the site without a webhook records none
    assert {d.site_id for d in deliveries()} == {site["id"]}


def test_each_round_of_a_recurring_survey_is_announced_once(client, survey):
    site, campaign, variant_id = survey(frequency={"repeat_after_days": 90})
    respond(client, site, campaign, variant_id, "visitor-rounds01", {"likely": 3})
    time_passes(timedelta(days=91))
    respond(client, site, campaign, variant_id, "visitor-rounds01", {"likely": 5})

    announced = [
        (d.payload["data"]["round"], d.payload["data"]["answers"][0]["value"]) for d in deliveries()
    ]
    assert announced == [(1, 3), (2, 5)]


def test_a_completion_past_the_quota_is_not_announced(client, survey):
    site, campaign, variant_id = survey(frequency={"max_responses": 1})
    for visitor in ("visitor-quota001", "visitor-quota002"):
        assert decide(client, site, visitor).json["campaigns"]
    for visitor in ("visitor-quota001", "visitor-quota002"):
        send_events(client, site, [event("complete", visitor, campaign["id"], variant_id)])

    assert [d.payload["data"]["visitor_id"] for d in deliveries()] == ["visitor-quota001"]


def test_failed_delivery_is_retried_after_a_500(client, runner, survey, webhook_receiver):
    site, campaign, variant_id = survey()
    respond(client, site, campaign, variant_id, "visitor-retry001", {"found": "search"})
    webhook_receiver.status = 500

    assert "retrying 1" in runner.invoke(args=["deliver-webhooks"]).output
    [delivery] = deliveries()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 1, "HTTP 500")

    webhook_receiver.status = 200
    time_passes(timedelta(seconds=10), "webhook_deliveries")  # past the first retry's 5 s
    assert "delivered 1" in runner.invoke(args=["deliver-webhooks"]).output
    assert [d.status for d in deliveries()] == ["delivered"]
    (first_headers, first), (second_headers, second) = webhook_receiver.received
    assert first == second
    assert first_headers["webhook-id"] == second_headers["webhook-id"]


def test_partial_is_recorded_after_the_idle_time_and_not_before(
    client, runner, survey, webhook_receiver
):
    site, campaign, variant_id = survey(events=["response.completed", "response.partial"])
    respond(client, site, campaign, variant_id, "visitor-left0001", {"found": "friend"}, False)
    respond(client, site, campaign, variant_id, "visitor-done0001", {"found": "search"})
    assert [d.event for d in deliveries()] == ["response.completed"]

    queue_partials()
    time_passes(timedelta(minutes=29))
    queue_partials()
    assert [d.event for d in deliveries()] == ["response.completed"]

    time_passes(timedelta(minutes=2))
    queue_partials()
    queue_partials()  # once per response round

    assert [d.event for d in deliveries()] == ["response.completed", "response.partial"]
    runner.invoke(args=["deliver-webhooks"])
    envelope = json.loads(webhook_receiver.received[-1][1])
    partial = envelope["data"]
    assert (envelope["type"], partial["visitor_id"], partial["completed_at"]) == (
        "response.partial",
        "visitor-left0001",
        None,
    )
    assert [a["answer"] for a in partial["answers"]] == ["A friend"]


def test_responses_quiet_for_over_a_day_when_first_scanned_are_history(client, survey):
    site, campaign, variant_id = survey(events=["response.partial"])
    respond(client, site, campaign, variant_id, "visitor-old00001", {"found": "friend"}, False)
    time_passes(timedelta(days=2))

    assert queue_partials() == 1  # passed by

    assert deliveries() == []


def test_no_partial_for_a_site_that_asked_only_for_completions(client, survey):
    site, campaign, variant_id = survey()  # events default to ["response.completed"]
    respond(client, site, campaign, variant_id, "visitor-left0002", {"found": "friend"}, False)
    time_passes(timedelta(hours=1))

    queue_partials()

    assert deliveries() == []


def test_partial_scan_waits_for_events_the_applier_has_not_applied(
    app, client, survey, monkeypatch
):
    site, campaign, variant_id = survey(events=["response.partial"])
    respond(client, site, campaign, variant_id, "visitor-left0003", {"found": "friend"}, False)
    time_passes(timedelta(hours=1))
    monkeypatch.setitem(app.config, "EVENTS_APPLY_INLINE", False)
    later = event("answer", "visitor-left0003", campaign["id"], variant_id, step_id="why", value=1)
    send_events(client, site, [later])  # stored, not applied yet

    queue_partials()
    assert deliveries() == []

    applier.apply_all()
    time_passes(timedelta(hours=1))
    queue_partials()
    [partial] = deliveries()
    assert [a["step_id"] for a in partial.payload["data"]["answers"]] == ["found", "why"]


def test_partial_scan_reads_a_bounded_run_and_moves_its_watermark(client, survey):
    site, campaign, variant_id = survey(events=["response.partial"])
    for n in range(5):
        respond(client, site, campaign, variant_id, f"visitor-scan{n:04d}", {"found": "x"}, False)
    time_passes(timedelta(hours=1))
    respond(client, site, campaign, variant_id, "visitor-scan-busy", {"found": "x"}, False)

    # Two responses a run: the watermark moves through the quiet ones and stops before the
    # response still being answered.
    assert [queue_partials(limit=2) for _ in range(4)] == [4, 4, 2, 0]
    assert len(deliveries()) == 5

    time_passes(timedelta(hours=1))
    assert queue_partials(limit=2) == 2
    assert len(deliveries()) == 6


@pytest.mark.parametrize(
    ("hook", "field", "message"),
    [
        ({"url": "http://10.0.0.5/hook"}, "url", "not a public address"),
        ({"url": "http://169.254.169.254/latest"}, "url", "not a public address"),
        ({"url": "http://localhost:8080/"}, "url", "this server"),
        ({"url": "ftp://hooks.example/x"}, "url", ""),
        ({"events": ["response.completed"]}, "url", ""),
        ({"url": "https://hooks.example/x", "events": ["response.deleted"]}, "events.0", ""),
        ({"url": "https://hooks.example/x", "events": []}, "events", ""),
        ({"url": "https://hooks.example/x", "format": "xml"}, "format", ""),
        ({"url": "https://hooks.example/x", "secret": "x"}, "secret", ""),
    ],
)
def test_bad_response_webhook_is_refused_naming_the_field(admin, make_site, hook, field, message):
    site = make_site()

    answer = admin.patch(
        f"/api/v1/admin/sites/{site['id']}", json={"settings": {"response_webhook": hook}}
    )

    assert answer.status_code == 400, answer.json
    errors = answer.json["error"]["fields"]
    name = f"settings.response_webhook.{field}"
    assert name in errors, errors
    assert message in " ".join(errors[name])
    stored = admin.get(f"/api/v1/admin/sites/{site['id']}").json["settings"]
    assert "response_webhook" not in stored


def test_response_webhook_is_stored_and_turned_off_with_null(admin, make_site):
    site = make_site()
    path = f"/api/v1/admin/sites/{site['id']}"
    hook = {"url": "https://hooks.example/x", "events": ["response.partial"] * 2}

    stored = admin.patch(path, json={"settings": {"response_webhook": hook}}).json["settings"]
    assert stored["response_webhook"] == {
        "url": "https://hooks.example/x",
        "events": ["response.partial"],
        "format": "json",
    }
    off = admin.patch(path, json={"settings": {"response_webhook": None}}).json["settings"]
    assert off["response_webhook"] is None


def test_nothing_is_recorded_without_a_response_webhook(client, make_site, make_campaign):
    site = make_site()
    campaign = make_campaign(site)
    respond(client, site, campaign, campaign["variants"][0]["id"], "visitor-nohook01", {"q1": "x"})
    time_passes(timedelta(hours=1))
    queue_partials()
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
