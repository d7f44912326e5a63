"""Several evaluators at once leave one decision; promotions call the signed webhook."""

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select, text

from tests.promotion.helpers import simulate
from widget_server.extensions import db
from widget_server.models import Decision, WebhookDelivery

REPO = Path(__file__).resolve().parents[2]


#: Each process imports the app first, then waits for the same wall-clock moment to start its
#: round, so the four rounds really overlap (not four starts spread over the import time).
RACER = """
import sys, time
from widget_server.cli import main
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
sys.argv = ["funnelcake", "evaluate"]
main()
"""


def test_four_evaluators_at_once_leave_one_decision(client, ab_test, database_url, tmp_path):
    """On PostgreSQL the advisory lock decides who evaluates; on SQLite the lease row does."""
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
    start_at = time.time() + 15  # imports take seconds on a loaded machine
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(start_at)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err.decode()
        reports.append(json.loads(out.decode().strip().splitlines()[-1]))

    assert sum(r["promoted"] == [campaign["id"]] for r in reports) == 1, reports
    db.session.rollback()
    decisions = db.session.scalars(select(Decision)).all()
    assert [(d.campaign_id, d.action, d.winner_variant_id) for d in decisions] == [
        (campaign["id"], "promote", b)
    ]


def test_round_does_not_decide_a_campaign_promoted_while_it_ran(
    client, admin, ab_test, monkeypatch
):
    """An admin's promotion committed between the round's read and its write wins; the round
    records nothing (the compare-and-set of ``_claim``, also on SQLite, which has no row locks).
    """
    from widget_server.services.promotion import evaluation, results

    site, campaign, (a, b) = ab_test()
    simulate(client, site, campaign["id"], {a: 0.05, b: 0.30}, visitors=800, seed=22)
    judge = results.evaluate

    def judge_then_admin_promotes(*args, **kwargs):
        outcome = judge(*args, **kwargs)
        with db.engine.begin() as other:  # another process, its own transaction
            other.execute(
                text("UPDATE campaigns SET promoted_variant_id = :a WHERE id = :c"),
                {"a": a, "c": campaign["id"]},
            )
        return outcome

    monkeypatch.setattr(results, "evaluate", judge_then_admin_promotes)
    report = evaluation.run_round()

    assert report.evaluated == 1 and report.promoted == []
    db.session.rollback()
    assert db.session.scalars(select(Decision)).all() == []
    shown = admin.get(f"/api/v1/admin/campaigns/{campaign['id']}").json
    assert shown["promoted_variant_id"] == a
    assert {v["id"]: v["weight"] for v in shown["variants"]} == {a: 1.0, b: 1.0}


def test_promotion_calls_the_signed_webhook(admin, ab_test, webhook_receiver):
    site, campaign, (a, b) = ab_test(webhook_url=webhook_receiver.url)
    secret = admin.get(f"/api/v1/admin/sites/{site['id']}").json["secret"]

    response = admin.post(
        f"/api/v1/admin/campaigns/{campaign['id']}/promote", json={"variant_id": b}
    )

    assert response.status_code == 201
    [(headers, body)] = webhook_receiver.received
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Funnelcake-Signature"] == expected
    payload = json.loads(body)
    assert payload["type"] == "decision.made"
    data = payload["data"]
    assert (data["action"], data["campaign_id"], data["winner_variant_id"]) == (
        "promote",
        campaign["id"],
        b,
    )
    assert data["automatic"] is False
    delivery = db.session.scalars(select(WebhookDelivery)).one()
    assert delivery.status == "delivered"


def test_manual_promotion_leaves_a_slow_webhook_to_the_next_round(admin, ab_test, webhook_receiver):
    webhook_receiver.answering.clear()  # never answers in time
    site, campaign, (a, b) = ab_test(webhook_url=webhook_receiver.url)
    response = admin.post(
        f"/api/v1/admin/campaigns/{campaign['id']}/promote", json={"variant_id": b}
    )
    assert response.status_code == 201  # answered after one short try, not 30 s
    delivery = db.session.scalars(select(WebhookDelivery)).one()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert "timed out" in delivery.last_error


def test_decisions_go_to_the_campaign_url_and_the_site_webhook(admin, ab_test, webhook_receiver):
    site, campaign, (a, b) = ab_test(webhook_url=webhook_receiver.url)
    site_hook = {"url": webhook_receiver.url + "/site", "events": ["decision.made"]}
    answer = admin.patch(
        f"/api/v1/admin/sites/{site['id']}", json={"settings": {"webhook": site_hook}}
    )
    assert answer.status_code == 200, answer.json

    admin.post(f"/api/v1/admin/campaigns/{campaign['id']}/promote", json={"variant_id": b})
    assert admin.post(f"/api/v1/admin/campaigns/{campaign['id']}/undo").status_code == 201

    db.session.expire_all()
    found = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [(d.url.rsplit("/", 1)[1], d.payload["data"]["action"]) for d in found] == [
        ("hook", "promote"),
        ("site", "promote"),
        ("hook", "undo"),
        ("site", "undo"),
    ]
    assert {d.event for d in found} == {"decision.made"}
    # One decision is one message, whichever URLs it goes to.
    assert [d.message_id for d in found].count(found[0].message_id) == 2
    assert len({d.message_id for d in found}) == 2
