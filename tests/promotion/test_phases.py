"""Phases of an experiment, through the real endpoints: an admin's edit of a running test's
content, weights or targeting starts a new phase (once the PATCH says what happens to the
assignments), the results and the rounds read one phase, and earlier phases stay readable."""

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.helpers import event, send_events, survey_content
from tests.promotion.helpers import simulate, visit
from widget_server.extensions import db
from widget_server.models import Assignment, Campaign, Decision
from widget_server.services.promotion.evaluation import run_round

STICKY = {"assignments": "sticky"}
RERANDOMIZE = {"assignments": "rerandomize"}


def results(admin, campaign_id, phase=None):
    query = f"?phase={phase}" if phase is not None else ""
    response = admin.get(f"/api/v1/admin/campaigns/{campaign_id}/results{query}")
    assert response.status_code == 200, response.json
    return response.json


def exposed(body) -> dict[int, int]:
    return {row["variant_id"]: row["visitors"] for row in body["variants"]}


def counts(body) -> list[tuple]:
    return [(r["variant_id"], r["visitors"], r["conversions"]) for r in body["variants"]]


def send_in_batches(client, site, events) -> None:
    for start in range(0, len(events), 100):
        assert send_events(client, site, events[start : start + 100]).status_code == 202


def expose(client, site, campaign_id, visitors=4, prefix="seen") -> dict:
    """Show the campaign to a few visitors (impressions applied): its test is under way."""
    served = visit(client, site, campaign_id, [f"{prefix}-{i:04d}" for i in range(visitors)])
    events = [event("impression", k, campaign_id, v) for k, v in served.items()]
    send_in_batches(client, site, events)
    return served


def stored_phase(campaign_id) -> int:
    db.session.expire_all()
    return db.session.get(Campaign, campaign_id).phase


def weight_patch(admin, variant_id, weight, phase=None):
    body = {"weight": weight, **({"phase": phase} if phase else {})}
    return admin.patch(f"/api/v1/admin/variants/{variant_id}", json=body)


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("variant", {"weight": 3.0}),
        ("variant", {"content": survey_content(title="Changed")}),
        ("campaign", {"targeting": {"devices": ["mobile"]}}),
        ("campaign", {"trigger": {"type": "delay", "seconds": 9}}),
    ],
)
def test_a_phase_starting_edit_without_the_choice_is_refused_naming_phase(
    client, admin, ab_test, target, body
):
    site, campaign, (a, b) = ab_test()
    expose(client, site, campaign["id"])
    path = f"variants/{b}" if target == "variant" else f"campaigns/{campaign['id']}"
    before = admin.get(f"/api/v1/admin/{path}").json

    response = admin.patch(f"/api/v1/admin/{path}", json=body)

    assert response.status_code == 409
    assert "phase" in response.json["error"]["fields"]
    assert "phase 2" in response.json["error"]["message"]
    assert admin.get(f"/api/v1/admin/{path}").json == before
    assert stored_phase(campaign["id"]) == 1


def test_an_unknown_phase_choice_is_refused(client, admin, ab_test):
    site, campaign, (a, b) = ab_test()
    expose(client, site, campaign["id"])
    response = weight_patch(admin, b, 3.0, {"assignments": "shuffle"})
    assert response.status_code == 400
    assert "phase.assignments" in response.json["error"]["fields"]
    assert stored_phase(campaign["id"]) == 1


def test_renaming_a_campaign_or_a_variant_starts_no_phase(client, admin, ab_test):
    site, campaign, (a, b) = ab_test()
    expose(client, site, campaign["id"])
    renamed = admin.patch(f"/api/v1/admin/campaigns/{campaign['id']}", json={"name": "New"})
    assert renamed.status_code == 200 and renamed.json["phase"] == 1
    assert admin.patch(f"/api/v1/admin/variants/{b}", json={"name": "B2"}).status_code == 200
    assert (
        admin.patch(f"/api/v1/admin/campaigns/{campaign['id']}", json={"priority": 5}).status_code
        == 200
    )
    assert stored_phase(campaign["id"]) == 1


def test_editing_a_running_test_nobody_was_shown_yet_starts_no_phase(admin, ab_test):
    _, campaign, (a, b) = ab_test()
    assert weight_patch(admin, b, 3.0).status_code == 200
    assert stored_phase(campaign["id"]) == 1


def test_editing_a_draft_starts_no_phase(admin, make_site, make_campaign):
    from tests.helpers import survey_variants

    campaign = make_campaign(make_site(), start=False, variants=survey_variants("AB"))
    b = campaign["variants"][1]["id"]
    assert weight_patch(admin, b, 3.0).status_code == 200
    assert stored_phase(campaign["id"]) == 1


def test_sticky_phase_counts_only_visitors_first_exposed_in_it(client, admin, ab_test):
    site, campaign, (a, b) = ab_test()
    cid = campaign["id"]
    first = simulate(client, site, cid, {a: 0.1, b: 0.3}, visitors=120, seed=1, prefix="p1")
    # Assigned in phase 1 but not shown the popup until phase 2.
    late = visit(client, site, cid, [f"late-visitor-{i:04d}" for i in range(10)])
    phase_1 = results(admin, cid)
    assert sum(exposed(phase_1).values()) == len(first)

    edited = weight_patch(admin, b, 3.0, STICKY)

    assert edited.status_code == 200
    assert stored_phase(cid) == 2
    # Visitors of phase 1 keep their variant, and showing it to them again counts nowhere new.
    again = visit(client, site, cid, list(first)[:40])
    assert again == {key: first[key] for key in again}
    events = [event("impression", key, cid, variant) for key, variant in again.items()]
    events += [event("complete", key, cid, variant) for key, variant in again.items()]
    events += [event("impression", key, cid, variant) for key, variant in late.items()]
    assert send_events(client, site, events).status_code == 202
    second = simulate(client, site, cid, {a: 0.1, b: 0.3}, visitors=80, seed=2, prefix="p2")

    phase_2 = results(admin, cid)
    assert phase_2["phase"] == 2
    assert sum(exposed(phase_2).values()) == len(second) + len(late)
    expected = Counter([*second.values(), *late.values()])
    assert exposed(phase_2) == {a: expected[a], b: expected[b]}
    assert counts(results(admin, cid, phase=1)) == counts(phase_1)
    history = phase_2["phases"]
    assert [p["number"] for p in history] == [1, 2]
    assert history[1]["assignments"] == "sticky"
    assert history[1]["changed"] == [f"variant {b} weight"]


def test_rerandomize_assigns_everyone_afresh_by_the_new_weights(client, admin, ab_test):
    site, campaign, (a, b) = ab_test()
    cid = campaign["id"]
    keys = [f"rerandomized-{i:04d}" for i in range(400)]
    first = visit(client, site, cid, keys)
    send_in_batches(client, site, [event("impression", k, cid, v) for k, v in first.items()])

    assert weight_patch(admin, b, 3.0, RERANDOMIZE).status_code == 200

    second = visit(client, site, cid, keys)
    share_b = sum(1 for v in second.values() if v == b) / len(second)
    assert 0.68 < share_b < 0.82  # weights 1:3
    assert any(first[key] != second[key] for key in keys)
    assert visit(client, site, cid, keys) == second  # stable within the phase
    stored = db.session.scalars(select(Assignment).where(Assignment.campaign_id == cid)).all()
    assert {row.phase for row in stored} == {2}
    assert all(row.impressions == 1 for row in stored)  # the frequency counters are kept
    # Exposed again in phase 2, every visitor counts there once, under the new variant.
    for _ in range(2):
        send_in_batches(client, site, [event("impression", k, cid, v) for k, v in second.items()])
    phase_2 = results(admin, cid)
    assert exposed(phase_2) == dict(Counter(second.values()))
    assert sum(exposed(results(admin, cid, phase=1)).values()) == len(keys)


def test_a_round_judges_only_the_current_phase(client, admin, ab_test):
    site, campaign, (a, b) = ab_test()
    cid = campaign["id"]
    simulate(client, site, cid, {a: 0.05, b: 0.40}, visitors=800, seed=4)
    assert weight_patch(admin, a, 1.5, STICKY).status_code == 200

    report = run_round()

    assert report.promoted == []  # phase 1's clear winner is not phase 2's evidence
    assert db.session.scalars(select(Decision)).all() == []
    simulate(client, site, cid, {a: 0.05, b: 0.40}, visitors=800, seed=5, prefix="p2")
    assert run_round().promoted == [cid]
    decision = db.session.scalars(select(Decision).where(Decision.campaign_id == cid)).one()
    assert decision.phase == 2
    assert decision.snapshot["phase"] == 2
    # The promotion's own weight change starts no phase.
    assert stored_phase(cid) == 2


def test_min_running_days_count_from_the_phase_start(client, admin, ab_test):
    site, campaign, (a, b) = ab_test(min_running_days=7)
    cid = campaign["id"]
    stored = db.session.get(Campaign, cid)
    stored.started_at -= timedelta(days=30)
    db.session.commit()
    expose(client, site, cid)
    assert weight_patch(admin, a, 1.5, STICKY).status_code == 200
    assert stored_phase(cid) == 2
    simulate(client, site, cid, {a: 0.05, b: 0.40}, visitors=800, seed=6)

    assert run_round().promoted == []

    stored = db.session.get(Campaign, cid)
    stored.phase_started_at -= timedelta(days=8)
    db.session.commit()
    assert run_round().promoted == [cid]


def test_bandit_weight_changes_start_no_phase(client, ab_test):
    site, campaign, (a, b) = ab_test(method="bandit", auto_promote=False)
    simulate(client, site, campaign["id"], {a: 0.05, b: 0.30}, visitors=600, seed=14)

    assert run_round().reweighted == [campaign["id"]]
    assert stored_phase(campaign["id"]) == 1


@pytest.mark.parametrize("phase", ["0", "3", "two"])
def test_results_of_a_phase_the_campaign_never_had_are_refused(client, admin, ab_test, phase):
    site, campaign, (a, b) = ab_test()
    expose(client, site, campaign["id"])
    assert weight_patch(admin, b, 3.0, STICKY).status_code == 200
    response = admin.get(f"/api/v1/admin/campaigns/{campaign['id']}/results?phase={phase}")
    assert response.status_code == 400
    assert "phase" in response.json["error"]["fields"]


def test_a_variant_added_to_a_test_in_progress_starts_a_phase_once_chosen(client, admin, ab_test):
    """A new arm takes a share of the traffic: the split changes, so the figures restart."""
    site, campaign, (a, b) = ab_test()
    cid = campaign["id"]
    expose(client, site, cid)
    variant = {"name": "C", "weight": 1.0, "content": survey_content(title="C")}
    path = f"/api/v1/admin/campaigns/{cid}/variants"

    refused = admin.post(path, json=variant)

    assert refused.status_code == 409
    assert "phase" in refused.json["error"]["fields"]
    assert len(admin.get(f"/api/v1/admin/campaigns/{cid}").json["variants"]) == 2
    assert stored_phase(cid) == 1

    added = admin.post(path, json={**variant, "phase": RERANDOMIZE})

    assert added.status_code == 201
    assert stored_phase(cid) == 2
    assert len(admin.get(f"/api/v1/admin/campaigns/{cid}").json["variants"]) == 3


def test_a_variant_added_before_anyone_was_shown_the_test_starts_no_phase(admin, ab_test):
    _, campaign, _ = ab_test()
    variant = {"name": "C", "weight": 1.0, "content": survey_content(title="C")}
    added = admin.post(f"/api/v1/admin/campaigns/{campaign['id']}/variants", json=variant)
    assert added.status_code == 201
    assert stored_phase(campaign["id"]) == 1
