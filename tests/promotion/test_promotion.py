"""Automatic promotion end to end: simulated visitors through decide and events, the evaluator,
and what decide serves afterwards."""

from datetime import timedelta

from sqlalchemy import func, select

from tests.promotion.helpers import simulate, visit
from widget_server.extensions import db
from widget_server.models import Campaign, Decision
from widget_server.services.promotion.evaluation import run_round


def decisions(campaign_id):
    return db.session.scalars(select(Decision).where(Decision.campaign_id == campaign_id)).all()


def test_evaluator_promotes_the_better_variant_and_decide_serves_it(client, admin, ab_test):
    site, campaign, (a, b) = ab_test()
    simulate(client, site, campaign["id"], {a: 0.10, b: 0.15}, visitors=3000, seed=11)

    report = run_round()

    assert report.acquired and report.promoted == [campaign["id"]]
    [decision] = decisions(campaign["id"])
    assert (decision.action, decision.winner_variant_id, decision.automatic) == ("promote", b, True)
    assert decision.previous_weights == {str(a): 1.0, str(b): 1.0}
    assert decision.snapshot["decision"]["winner_variant_id"] == b
    shown = admin.get(f"/api/v1/admin/campaigns/{campaign['id']}").json
    assert shown["promoted_variant_id"] == b
    served = visit(client, site, campaign["id"], [f"visitor-new-{i:04d}" for i in range(40)])
    assert set(served.values()) == {b}
    results = admin.get(f"/api/v1/admin/campaigns/{campaign['id']}/results").json
    assert results["decision"]["action"] == "promote"
    assert results["decision"]["winner_variant_id"] == b
    # A second round changes nothing: one decision per campaign.
    assert run_round().promoted == []
    assert len(decisions(campaign["id"])) == 1


def test_a_a_test_does_not_promote(client, ab_test):
    site, campaign, (a, b) = ab_test()
    simulate(client, site, campaign["id"], {a: 0.10, b: 0.10}, visitors=3000, seed=12)

    report = run_round()

    assert report.evaluated == 1 and report.promoted == [] and report.stopped == []
    assert decisions(campaign["id"]) == []
    assert db.session.get(Campaign, campaign["id"]).promoted_variant_id is None


def test_campaign_at_maximum_duration_stops_and_keeps_control(client, admin, ab_test):
    site, campaign, (a, b) = ab_test(max_duration_days=1)
    simulate(client, site, campaign["id"], {a: 0.10, b: 0.10}, visitors=300, seed=13)
    stored = db.session.get(Campaign, campaign["id"])
    stored.started_at -= timedelta(days=2)
    db.session.commit()

    assert run_round().stopped == [campaign["id"]]

    [decision] = decisions(campaign["id"])
    assert (decision.action, decision.winner_variant_id) == ("stop", a)
    shown = admin.get(f"/api/v1/admin/campaigns/{campaign['id']}").json
    assert shown["status"] == "completed" and shown["promoted_variant_id"] is None
    assert visit(client, site, campaign["id"], ["visitor-after-stop"]) == {}


def test_evaluator_skips_the_round_while_another_holds_the_lock(app, ab_test):
    from widget_server.services.promotion import evaluation

    ab_test()
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as other:
            other.exec_driver_sql(f"SELECT pg_advisory_lock({evaluation.ADVISORY_LOCK_KEY})")
            assert run_round().acquired is False
            other.exec_driver_sql(f"SELECT pg_advisory_unlock({evaluation.ADVISORY_LOCK_KEY})")
    else:
        assert evaluation._take_lease("someone-else", evaluation.utcnow())
        assert run_round().acquired is False
        evaluation._release_lease("someone-else")
    assert run_round().acquired is True


def test_manual_promotion_undo_and_decision_log(client, admin, ab_test):
    site, campaign, (a, b) = ab_test(auto_promote=False)
    cid = campaign["id"]
    promoted = admin.post(f"/api/v1/admin/campaigns/{cid}/promote", json={"variant_id": a})
    assert promoted.status_code == 201, promoted.json
    assert promoted.json["automatic"] is False and promoted.json["winner_variant_id"] == a
    assert set(visit(client, site, cid, [f"visitor-m-{i:03d}" for i in range(20)]).values()) == {a}
    again = admin.post(f"/api/v1/admin/campaigns/{cid}/promote", json={"variant_id": b})
    assert again.status_code == 409

    undone = admin.post(f"/api/v1/admin/campaigns/{cid}/undo")
    assert undone.status_code == 201 and undone.json["action"] == "undo"
    shown = admin.get(f"/api/v1/admin/campaigns/{cid}").json
    assert shown["promoted_variant_id"] is None
    assert {v["id"]: v["weight"] for v in shown["variants"]} == {a: 1.0, b: 1.0}
    served = visit(client, site, cid, [f"visitor-u-{i:03d}" for i in range(60)])
    assert set(served.values()) == {a, b}

    log = admin.get(f"/api/v1/admin/campaigns/{cid}/decisions").json["decisions"]
    assert [d["action"] for d in log] == ["undo", "promote"]
    assert log[1]["undone_at"] is not None
    assert admin.post(f"/api/v1/admin/campaigns/{cid}/undo").status_code == 409


def test_promote_names_the_bad_field(admin, ab_test, make_campaign):
    site, campaign, _ = ab_test()
    other = make_campaign(site)
    url = f"/api/v1/admin/campaigns/{campaign['id']}/promote"
    for body in ({}, {"variant_id": "x"}, {"variant_id": other["variants"][0]["id"]}):
        response = admin.post(url, json=body)
        assert response.status_code == 400, body
        assert "variant_id" in response.json["error"]["fields"]
    assert (
        admin.post("/api/v1/admin/campaigns/999999/promote", json={"variant_id": 1}).status_code
        == 404
    )


def test_bandit_reweights_traffic_for_new_visitors(client, admin, ab_test):
    site, campaign, (a, b) = ab_test(method="bandit", auto_promote=False)
    simulate(client, site, campaign["id"], {a: 0.05, b: 0.30}, visitors=600, seed=14)

    report = run_round()

    assert report.reweighted == [campaign["id"]]
    weights = {v["id"]: v["weight"] for v in admin.get(
        f"/api/v1/admin/campaigns/{campaign['id']}").json["variants"]}  # fmt: skip
    assert weights[b] > 0.8 > weights[a] > 0
    served = visit(client, site, campaign["id"], [f"visitor-b-{i:04d}" for i in range(300)])
    share_b = sum(1 for v in served.values() if v == b) / len(served)
    assert abs(share_b - weights[b] / (weights[a] + weights[b])) < 0.08
    assert db.session.scalar(select(func.count(Decision.id))) == 0


def test_unseen_campaign_waits_quietly_then_stops_at_maximum_duration(admin, ab_test, caplog):
    _, campaign, (a, _) = ab_test(max_duration_days=5)

    assert run_round().stopped == []
    assert not [r for r in caplog.records if r.levelname == "WARNING"]  # waiting is normal

    stored = db.session.get(Campaign, campaign["id"])
    stored.started_at -= timedelta(days=6)
    db.session.commit()
    assert run_round().stopped == [campaign["id"]]
    [decision] = decisions(campaign["id"])
    assert (decision.action, decision.winner_variant_id) == ("stop", a)
    assert "maximum duration" in decision.reason
    assert admin.get(f"/api/v1/admin/campaigns/{campaign['id']}").json["status"] == "completed"


def test_server_runs_rounds_in_the_background_on_its_interval(client, app, ab_test):
    import threading

    from widget_server.services.platform.jobs import JobRunner
    from widget_server.worker import installation_jobs

    site, campaign, (a, b) = ab_test()
    simulate(client, site, campaign["id"], {a: 0.10, b: 0.15}, visitors=3000, seed=11)
    app.config.update(TESTING=False, EVALUATE_INTERVAL_S=0.05)
    [evaluate] = [job for job in installation_jobs(app) if job.name == "evaluate"]
    runner = JobRunner(app, [evaluate]).start()
    try:
        for _ in range(600):
            db.session.rollback()
            if decisions(campaign["id"]):
                break
            threading.Event().wait(0.1)
    finally:
        runner.stop(timeout_s=30)
    assert not any(thread.is_alive() for thread in runner.threads)
    db.session.rollback()
    [decision] = decisions(campaign["id"])
    assert (decision.action, decision.winner_variant_id) == ("promote", b)


def test_no_background_rounds_under_testing_or_without_an_interval(make_app):
    from widget_server.worker import installation_jobs

    def job_names(app):
        return {job.name for job in installation_jobs(app)}

    assert "evaluate" not in job_names(make_app(EVALUATE_INTERVAL_S=30))
    assert "evaluate" not in job_names(make_app(TESTING=False, EVALUATE_INTERVAL_S=0))
    on = make_app(TESTING=False, EVALUATE_INTERVAL_S=30, APPLIERS=1)
    assert job_names(on) == {
        "apply-events-1",
        "deliver-webhooks",
        "response-partials",
        "funnel-figures",
        "evaluate",
    }


def test_a_worker_runs_four_appliers_on_postgresql_and_one_on_sqlite(make_app, database_url):
    from widget_server.worker import installation_jobs

    jobs = [j for j in installation_jobs(make_app()) if j.name.startswith("apply")]
    postgresql = database_url.startswith("postgresql")
    expected = 4 if postgresql else 1
    assert [j.name for j in jobs] == [f"apply-events-{n + 1}" for n in range(expected)]
    assert {j.full for j in jobs} == {2000 if postgresql else 1000}  # the chunk
    chosen = installation_jobs(make_app(APPLIERS=3, APPLIER_CHUNK=500))
    assert [j.full for j in chosen if j.name.startswith("apply")] == [500] * 3
