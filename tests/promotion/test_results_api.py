"""GET campaigns/<id>/results: the documented shape, numbers equal to a direct count,
statistics equal to independent implementations (statsmodels, scipy)."""

import math
import random

import pytest
from scipy import stats
from sqlalchemy import text
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from ab import policy
from tests.api.helpers import event, send_events
from tests.promotion.helpers import simulate, visit
from tests.promotion.test_metrics import direct_count
from widget_server.extensions import db
from widget_server.models.types import utcnow
from widget_server.services.promotion import metrics

VARIANT_KEYS = {
    "variant_id", "name", "is_control", "weight", "visitors", "conversions", "rate", "ci",
    "lift", "p_value", "chance_to_beat_control",
}  # fmt: skip


@pytest.mark.parametrize("method", policy.METHODS)
def test_results_have_the_spec_shape_for_every_method(client, admin, ab_test, method):
    site, campaign, (a, b) = ab_test(method=method)
    simulate(client, site, campaign["id"], {a: 0.2, b: 0.3}, visitors=200, seed=31)

    body = admin.get(f"/api/v1/admin/campaigns/{campaign['id']}/results").json

    assert {
        "campaign_id",
        "metric",
        "method",
        "alpha",
        "status",
        "variants",
        "srm",
        "decision",
    } <= (body.keys())
    assert (body["campaign_id"], body["metric"], body["method"]) == (
        campaign["id"],
        "completion",
        method,
    )
    assert body["alpha"] == 0.05 and body["status"] == "running"
    assert [v["variant_id"] for v in body["variants"]] == [a, b]
    for variant in body["variants"]:
        assert VARIANT_KEYS <= variant.keys()
        lo, hi = variant["ci"]
        assert 0 <= lo <= variant["rate"] <= hi <= 1
    control, treatment = body["variants"]
    assert control["is_control"] and control["p_value"] is None
    assert 0 <= treatment["p_value"] <= 1 and 0 <= treatment["chance_to_beat_control"] <= 1
    assert set(body["srm"]) == {"p_value", "ok"} and body["srm"]["ok"] is True
    assert body["decision"]["action"] in ("continue", "promote", "stop")
    assert body["decision"]["reason"]
    assert sum(p["visitors"] for p in body["series"]) == sum(
        v["visitors"] for v in body["variants"]
    )


def test_results_numbers_equal_a_direct_count_and_statsmodels(client, admin, ab_test):
    site, campaign, (a, b) = ab_test(method="fixed")
    simulate(client, site, campaign["id"], {a: 0.10, b: 0.15}, visitors=1600, seed=32)

    body = admin.get(f"/api/v1/admin/campaigns/{campaign['id']}/results").json

    expected = direct_count(campaign["id"])["completion"]
    got = {v["variant_id"]: [v["visitors"], v["conversions"]] for v in body["variants"]}
    assert got == expected
    control, treatment = body["variants"]
    for v in body["variants"]:
        lo, hi = proportion_confint(v["conversions"], v["visitors"], alpha=0.05, method="wilson")
        assert v["rate"] == pytest.approx(v["conversions"] / v["visitors"], abs=1e-12)
        assert v["ci"] == pytest.approx([lo, hi], abs=1e-9)
    _, p_value = proportions_ztest(
        [treatment["conversions"], control["conversions"]],
        [treatment["visitors"], control["visitors"]],
    )
    assert treatment["p_value"] == pytest.approx(p_value, rel=1e-6, abs=1e-12)
    assert treatment["lift"] == pytest.approx(treatment["rate"] / control["rate"] - 1, rel=1e-9)
    n = [v["visitors"] for v in body["variants"]]
    srm = stats.chisquare(n, [sum(n) / 2, sum(n) / 2]).pvalue
    assert body["srm"]["p_value"] == pytest.approx(srm, rel=1e-6)


def test_revenue_results_match_welch_from_scipy(client, admin, ab_test):
    site, campaign, (a, b) = ab_test(method="fixed", metric="revenue")
    served = visit(client, site, campaign["id"], [f"visitor-rev-{i:04d}" for i in range(300)])
    impressions = [event("impression", v, campaign["id"], x) for v, x in served.items()]
    for start in range(0, len(impressions), 100):
        assert send_events(client, site, impressions[start : start + 100]).status_code == 202
    pks = dict(db.session.execute(text("SELECT visitor_key, id FROM visitors")).all())
    rng = random.Random(5)
    values = {a: [], b: []}
    for visitor_key, variant_id in served.items():
        total = 0.0
        if rng.random() < (0.2 if variant_id == a else 0.3):
            for _ in range(rng.randrange(1, 3)):
                amount = round(rng.lognormvariate(3, 0.5), 2)
                metrics.record_conversion(
                    campaign["id"], pks[visitor_key], "revenue", utcnow(), value=amount
                )
                total += amount
        values[variant_id].append(total)
    db.session.commit()

    body = admin.get(f"/api/v1/admin/campaigns/{campaign['id']}/results").json

    control, treatment = body["variants"]
    assert control["visitors"] == len(values[a]) and treatment["visitors"] == len(values[b])
    assert treatment["rate"] == pytest.approx(sum(values[b]) / len(values[b]), rel=1e-9)
    welch = stats.ttest_ind(values[b], values[a], equal_var=False).pvalue
    assert treatment["p_value"] == pytest.approx(welch, rel=1e-4)
    assert math.isfinite(treatment["ci"][0]) and treatment["ci"][0] < treatment["rate"]


def test_results_of_a_campaign_without_visitors_or_with_one_variant_answer_200(
    admin, make_site, make_campaign, ab_test
):
    _, empty, (a, b) = ab_test()
    single = make_campaign(make_site(name="Other"))
    for campaign in (empty, single):
        response = admin.get(f"/api/v1/admin/campaigns/{campaign['id']}/results")
        assert response.status_code == 200, response.json
        assert response.json["decision"]["action"] == "continue"
        assert all(v["visitors"] == 0 for v in response.json["variants"])
    assert admin.get("/api/v1/admin/campaigns/999999/results").status_code == 404


def test_a_single_variant_campaign_says_it_needs_a_second_variant(admin, make_site, make_campaign):
    single = make_campaign(make_site(name="Single"))
    reason = admin.get(f"/api/v1/admin/campaigns/{single['id']}/results").json["decision"]["reason"]
    assert "add a second variant" in reason
    assert "arms" not in reason  # no engine internals in the owner's words


def test_a_test_without_visitors_says_which_variants_wait(admin, ab_test):
    _, empty, _ = ab_test()
    reason = admin.get(f"/api/v1/admin/campaigns/{empty['id']}/results").json["decision"]["reason"]
    names = " and ".join(v["name"] for v in empty["variants"])
    assert reason == f"Waiting for visitors: variants {names} have none yet."


def test_promoted_campaign_shows_the_srm_check_of_its_decision(client, admin, ab_test):
    """Visitors after a promotion all go to the winner: that skew is no sample-ratio mismatch."""
    site, campaign, (a, b) = ab_test(auto_promote=False)
    cid = campaign["id"]
    simulate(client, site, cid, {a: 0.1, b: 0.1}, visitors=400, seed=33, prefix="before")
    promoted = admin.post(f"/api/v1/admin/campaigns/{cid}/promote", json={"variant_id": a})
    assert promoted.status_code == 201
    simulate(client, site, cid, {a: 0.1, b: 0.1}, visitors=400, seed=34, prefix="after")

    body = admin.get(f"/api/v1/admin/campaigns/{cid}/results").json

    visitors = {v["variant_id"]: v["visitors"] for v in body["variants"]}
    assert visitors[a] > 2 * visitors[b]  # live figures, skewed by the promotion
    assert body["srm"] == promoted.json["snapshot"]["srm"] and body["srm"]["ok"] is True
    assert body["decision"]["winner_variant_id"] == a
