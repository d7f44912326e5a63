"""The segments CSV (formula cells neutralised, streamed in constant memory) and the signed
stage webhook delivered outside the request."""

import csv
import hashlib
import hmac
import io
import json
import threading
import tracemalloc
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import insert, select

from tests.funnel.helpers import answer_survey, identify, loyalty_campaign, place_order
from widget_server.extensions import db
from widget_server.models import Visitor, WebhookDelivery
from widget_server.models.types import utcnow
from widget_server.services.platform.spreadsheets import neutralise


def rows_of(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_segments_csv_has_one_row_per_visitor_with_stage_scores_orders(
    admin, client, make_site, make_campaign
):
    site = make_site()
    survey = loyalty_campaign(make_campaign, site)
    identify(
        client,
        site,
        {
            "visitor_id": "visitor-export1",
            "customer_id": "c-1",
            "email": "a@shop.example",
            "email_consent": True,
            "attributes": {"plan": "gold"},
        },
    )
    place_order(site, "visitor-export1", "12.30")
    answer_survey(client, site, survey, "visitor-export1", {"emotional": 5, "action": "yes"})
    identify(client, site, {"visitor_id": "visitor-export2", "email": "b@shop.example"})

    response = admin.get(f"/api/v1/admin/sites/{site['id']}/segments.csv")

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.is_streamed
    first, second = rows_of(response)
    assert first["visitor_id"] == "visitor-export1"
    assert (first["customer_id"], first["email"], first["stage"]) == (
        "c-1",
        "a@shop.example",
        "emotional",
    )
    assert (first["order_count"], first["total_spent"]) == ("1", "12.30")
    assert (first["score_emotional"], first["score_action"], first["score_nps"]) == (
        "5.0",
        "5.0",
        "",
    )
    assert json.loads(first["attributes"]) == {"plan": "gold"}
    assert second["email"] == ""  # no consent, not stored, not exported


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("\ncmd", "'\ncmd"),
        ("\n=1+1", "'\n=1+1"),
        (" =1+1", "' =1+1"),
        ("   @SUM(A1)", "'   @SUM(A1)"),
        ("\u00a0+1", "'\u00a0+1"),
        ("\u3000-1", "'\u3000-1"),
        ("\uff1dHYPERLINK(1)", "'\uff1dHYPERLINK(1)"),
        ("\uff0b1", "'\uff0b1"),
        ("\uff0d1", "'\uff0d1"),
        ("\uff20SUM(A1)", "'\uff20SUM(A1)"),
        (" \uff1d1", "' \uff1d1"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        ("mail@shop.example", "mail@shop.example"),
        ("  spaced words", "  spaced words"),
        ("line one\nline two", "line one\nline two"),
        ("", ""),
        ("   ", "   "),
        (-3.5, -3.5),
    ],
)
def test_formula_cells_are_neutralised(value, expected):
    assert neutralise(value) == expected


def test_export_neutralises_visitor_supplied_text(admin, client, make_site):
    site = make_site()
    identify(
        client,
        site,
        {"visitor_id": "visitor-formula", "customer_id": "=1+2", "attributes": {"x": "=cmd"}},
    )
    (row,) = rows_of(admin.get(f"/api/v1/admin/sites/{site['id']}/segments.csv"))
    assert row["customer_id"] == "'=1+2"
    assert json.loads(row["attributes"]) == {"x": "=cmd"}  # a JSON object cell starts with {


def _seed_visitors(site_id: int, count: int, start: int) -> None:
    now = utcnow()
    db.session.execute(
        insert(Visitor),
        [
            {
                "site_id": site_id,
                "visitor_key": f"visitor-bulk{start + i:08d}",
                "attributes": {"plan": "gold", "note": "x" * 40},
                "scores": {"emotional": 4.0},
                "stage": "emotional",
                "order_count": i % 3,
                "total_spent": 10 * (i % 3),
                "email_consent": False,
                "first_seen_at": now,
                "last_seen_at": now,
            }
            for i in range(count)
        ],
    )
    db.session.commit()


def _export_peak_bytes(admin, site) -> tuple[int, int]:
    response = admin.get(f"/api/v1/admin/sites/{site['id']}/segments.csv", buffered=False)
    tracemalloc.start()
    lines = 0
    try:
        for chunk in response.response:
            lines += chunk.count("\n") if isinstance(chunk, str) else chunk.count(b"\n")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        response.close()
    return lines, peak


def test_export_streams_in_constant_memory(admin, make_site):
    site = make_site()
    _seed_visitors(site["id"], 5000, 0)
    small_lines, small_peak = _export_peak_bytes(admin, site)
    _seed_visitors(site["id"], 15000, 5000)
    large_lines, large_peak = _export_peak_bytes(admin, site)
    assert (small_lines, large_lines) == (5001, 20001)
    # Four times the rows, about the same memory: nothing grows with the row count.
    assert large_peak < small_peak * 1.5 + 256 * 1024, (small_peak, large_peak)


class _Receiver(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(app):
    """A receiver on 127.0.0.1, which the operator setting allows (webhooks call public
    addresses only by default)."""
    app.config["WEBHOOK_ALLOWED_HOSTS"] = "127.0.0.1"
    _Receiver.received = []
    _Receiver.status = 200
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, _Receiver
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_stage_change_webhook_is_recorded_then_delivered_signed(
    admin, client, runner, make_site, receiver
):
    server, handler = receiver
    url = f"http://127.0.0.1:{server.server_port}/hooks/stage"
    site = make_site(stage_webhook_url=url)
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
    assert [(d.status, d.payload["to_stage"]) for d in pending] == [
        ("pending", "new_visitor"),
        ("pending", "customer"),
    ]
    assert handler.received == []  # nothing was sent inside the requests

    result = runner.invoke(args=["deliver-webhooks"])

    assert result.exit_code == 0, result.output
    assert "delivered 2" in result.output
    assert len(handler.received) == 2
    headers, body = handler.received[1]
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Funnelcake-Signature"] == expected
    payload = json.loads(body)
    assert payload["event"] == "visitor.stage_changed"
    assert (payload["visitor_id"], payload["customer_id"], payload["email"]) == (
        "visitor-hooked1",
        "c-1",
        "a@shop.example",
    )
    assert (payload["from_stage"], payload["to_stage"], payload["cause"]) == (
        "new_visitor",
        "customer",
        "order",
    )
    db.session.expire_all()
    assert {d.status for d in db.session.scalars(select(WebhookDelivery))} == {"delivered"}
    assert runner.invoke(args=["deliver-webhooks"]).output.startswith("delivered 0")


def test_failed_delivery_is_retried_on_a_later_round(admin, client, runner, make_site, receiver):
    server, handler = receiver
    site = make_site(stage_webhook_url=f"http://127.0.0.1:{server.server_port}/h")
    identify(client, site, {"visitor_id": "visitor-retry01"})
    handler.status = 500

    assert "retrying 1" in runner.invoke(args=["deliver-webhooks"]).output
    db.session.expire_all()
    delivery = db.session.scalar(select(WebhookDelivery))
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 1, "HTTP 500")

    handler.status = 204
    assert "delivered 1" in runner.invoke(args=["deliver-webhooks"]).output
    assert len(handler.received) == 2


def test_no_webhook_without_a_url(client, make_site):
    site = make_site()
    identify(client, site, {"visitor_id": "visitor-nohook1"})
    assert db.session.scalar(select(WebhookDelivery)) is None
