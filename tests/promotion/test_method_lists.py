"""The test methods and metrics: one list in ab/, and what the README, the docs, the API and the
admin page offer all agree with it (the README once advertised ``msprt``, which the API refused)."""

import re
from pathlib import Path

import pytest

from ab import policy
from widget_server import vocabulary
from widget_server.admin.results import METHOD_NAMES, METRIC_NAMES
from widget_server.schemas.campaigns import ABSettingsSchema

ROOT = Path(__file__).resolve().parents[2]


def readme_methods() -> list[str]:
    """The methods the README's "Methods (`method`)" section describes, in its order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Methods (`method`)", 1)[1].split("\n#", 1)[0]
    return re.findall(r"\*\*`([a-z_]+)`\*\*", section)


def documented_metrics() -> list[str]:
    """The metrics of the table in docs/promotion.md (first column, each name in backticks)."""
    text = (ROOT / "docs" / "promotion.md").read_text()
    table = text.split("A campaign's `ab.metric` is one of:", 1)[1].split("\n\n", 2)[1]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return [name for row in rows for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])]


def test_the_readme_describes_exactly_the_methods_ab_judges():
    assert readme_methods() and sorted(readme_methods()) == sorted(policy.METHODS)


def test_the_docs_list_exactly_the_metrics_ab_judges():
    assert sorted(documented_metrics()) == sorted(policy.METRICS)


def test_schema_service_and_admin_page_use_the_same_lists():
    ab_fields = ABSettingsSchema().fields
    assert set(ab_fields["method"].validate.choices) == set(policy.METHODS)
    assert set(ab_fields["metric"].validate.choices) == set(policy.METRICS)
    assert set(vocabulary.METRICS) == set(policy.METRICS)
    assert set(METHOD_NAMES) == set(policy.METHODS)
    assert set(METRIC_NAMES) == set(policy.METRICS)


@pytest.mark.parametrize("method", readme_methods())
def test_every_method_the_readme_lists_is_accepted_by_the_campaign_api(
    admin, make_site, make_campaign, method
):
    campaign = make_campaign(make_site(), ab={"method": method})
    assert campaign["ab"]["method"] == method

    patched = admin.patch(
        f"/api/v1/admin/campaigns/{campaign['id']}", json={"ab": {"method": method}}
    )
    assert patched.status_code == 200, patched.json
    results = admin.get(f"/api/v1/admin/campaigns/{campaign['id']}/results")
    assert results.status_code == 200, results.json
    assert results.json["method"] == method


@pytest.mark.parametrize("metric", policy.METRICS)
def test_every_metric_is_accepted_by_the_campaign_api(make_site, make_campaign, metric):
    campaign = make_campaign(make_site(), ab={"metric": metric})
    assert campaign["ab"]["metric"] == metric


def test_a_method_ab_does_not_know_is_refused_naming_it(admin, make_site):
    site = make_site()
    response = admin.post(
        f"/api/v1/admin/sites/{site['id']}/campaigns",
        json={"name": "S", "kind": "survey", "ab": {"method": "thompson"}},
    )
    assert response.status_code == 400
    assert "ab.method" in response.json["error"]["fields"]
