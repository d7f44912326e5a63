"""Several evaluators at once leave one decision; promotions call the signed webhook."""

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.promotion.helpers import simulate
from widget_server.extensions import db
from widget_server.models import Decision, WebhookDelivery

REPO = Path(__file__).resolve().parents[2]


def test_four_evaluators_at_once_on_postgresql_leave_one_decision(
    client, ab_test, database_url, tmp_path
):
    if not database_url.startswith("postgresql"):
        pytest.skip("the advisory lock race is a PostgreSQL test")
    site, campaign, (a, b) = ab_test()
    simulate(client, site, campaign["id"], {a: 0.05, b: 0.30}, visitors=800, seed=21)
    db.session.commit()
    env = {
        **os.environ,
        "FUNNELCAKE_DATABASE_URL": database_url,
        "FUNNELCAKE_INSTANCE_DIR": str(tmp_path),
        "FUNNELCAKE_SECRET_KEY": "race",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-c", "from widget_server.cli import main; main()", "evaluate"]
    processes = [
        subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
        reports.append(json.loads(out.decode().strip().splitlines()[-1]))

    assert sum(r["promoted"] == [campaign["id"]] for r in reports) == 1, reports
    db.session.rollback()
    decisions = db.session.scalars(select(Decision)).all()
    assert [(d.campaign_id, d.action, d.winner_variant_id) for d in decisions] == [
        (campaign["id"], "promote", b)
    ]


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_receiver():
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Receiver.received
    server.shutdown()
    server.server_close()


def test_promotion_calls_the_signed_webhook(admin, ab_test, make_site, webhook_receiver):
    url, received = webhook_receiver
    site, campaign, (a, b) = ab_test(webhook_url=url)
    secret = admin.get(f"/api/v1/admin/sites/{site['id']}").json["secret"]

    response = admin.post(
        f"/api/v1/admin/campaigns/{campaign['id']}/promote", json={"variant_id": b}
    )

    assert response.status_code == 201
    [(headers, body)] = received
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Funnelcake-Signature"] == expected
    payload = json.loads(body)
    assert payload["event"] == "campaign.promote"
    assert (payload["campaign_id"], payload["winner_variant_id"]) == (campaign["id"], b)
    delivery = db.session.scalars(select(WebhookDelivery)).one()
    assert delivery.status == "delivered"
