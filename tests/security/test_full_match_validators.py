"""Validators match the whole value: a pattern anchored with ``$`` also matched before a final
newline, so ``"visitor_id": "abc12345\\n"`` was a second visitor. Each identifier with a trailing
newline is now a 400 naming its field."""

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.api.helpers import decide, event, post_public, send_events
from tests.conftest import survey_content
from tests.rewards.helpers import post_order
from widget_server import vocabulary
from widget_server.extensions import db
from widget_server.models import CouponCode, Visitor
from widget_server.schemas.common import DIMENSION, LOCALE, SLUG, VISITOR_ID

VISITOR = "visitor-0001"
SERVICE = Path(__file__).resolve().parents[2] / "widget_server"


def fields_of(response) -> dict:
    assert response.status_code == 400, (response.status_code, response.get_data(as_text=True))
    return response.json["error"]["fields"]


@pytest.mark.parametrize(
    "pattern, value",
    [
        (SLUG, "q1"),
        (DIMENSION, "csat"),
        (VISITOR_ID, VISITOR),
        (LOCALE, "pt-BR"),
        (vocabulary.CODE_PATTERN, "SUMMER10"),
        (vocabulary.PREFIX_PATTERN, "DEMO-"),
    ],
)
def test_shared_patterns_refuse_a_trailing_newline(pattern, value):
    assert pattern.match(value)
    assert not pattern.match(value + "\n")


def test_no_pattern_in_the_service_is_anchored_with_a_dollar():
    # A raw-string pattern ending in "$" is the bug this file is about; use \Z or fullmatch.
    anchored = re.compile(r"""\br(["'])[^"']*\$\1""")
    offenders = [
        f"{path.relative_to(SERVICE.parent)}:{number}"
        for path in sorted(SERVICE.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if anchored.search(line)
    ]
    assert offenders == []


def test_a_visitor_id_with_a_trailing_newline_is_not_a_second_visitor(client, make_site):
    site = make_site()
    assert decide(client, site, visitor_id=VISITOR).status_code == 200
    assert "visitor_id" in fields_of(decide(client, site, visitor_id=VISITOR + "\n"))
    assert db.session.scalar(select(func.count()).select_from(Visitor)) == 1


@pytest.mark.parametrize(
    "endpoint, body, field",
    [
        ("identify", {"visitor_id": VISITOR + "\n"}, "visitor_id"),
        ("spin", {"visitor_id": VISITOR + "\n", "campaign_id": 1}, "visitor_id"),
        (
            "decide",
            {"visitor_id": VISITOR, "url": "https://shop.example/", "attributes": {"plan\n": 1}},
            "attributes",
        ),
        ("identify", {"visitor_id": VISITOR, "attributes": {"plan\n": "gold"}}, "attributes"),
    ],
)
def test_public_identifiers_with_a_trailing_newline_are_refused(
    client, make_site, endpoint, body, field
):
    site = make_site()
    assert field in fields_of(post_public(client, site, endpoint, body))


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda e: e.update(visitor_id=VISITOR + "\n"), "events.0.visitor_id"),
        (lambda e: e.update(id="abcdefgh-1234\n"), "events.0.id"),
        (lambda e: e["data"].update(step_id="q1\n"), "events.0.data.step_id"),
    ],
    ids=["visitor_id", "event-id", "step_id"],
)
def test_event_identifiers_with_a_trailing_newline_are_refused(
    client, make_site, make_campaign, change, field
):
    site = make_site()
    campaign = make_campaign(site)
    variant_id = campaign["variants"][0]["id"]
    decide(client, site, visitor_id=VISITOR)
    answer = event("answer", VISITOR, campaign["id"], variant_id, step_id="q1", value="search")
    change(answer)
    assert field in fields_of(send_events(client, site, [answer]))


def test_a_site_key_with_a_trailing_newline_names_no_site(client, make_site):
    site = make_site()
    response = decide(client, {**site, "site_key": site["site_key"] + "%0A"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "field, value",
    [("visitor_id", VISITOR + "\n"), ("currency", "EUR\n")],
)
def test_order_fields_with_a_trailing_newline_are_refused(client, make_site, field, value):
    site = make_site()
    order = {"order_id": "o-1", "total": "10.00", "currency": "EUR", "visitor_id": VISITOR}
    assert field in fields_of(post_order(client, site, {**order, field: value}))


def _survey_with(**step_changes) -> dict:
    content = survey_content()
    content["steps"][0].update(step_changes)
    return content


def _wheel_with(**slice_changes) -> dict:
    first = {"label": "10%", "weight": 1, "reward": {"type": "code", "code": "TEN"}}
    first.update(slice_changes)
    return {"slices": [first, {"label": "Nothing", "weight": 1}]}


@pytest.mark.parametrize(
    "kind, content, field",
    [
        ("survey", _survey_with(id="q1\n"), "variants.0.content.steps.0.id"),
        (
            "survey",
            _survey_with(options=[{"id": "a\n", "label": "A"}, {"id": "b", "label": "B"}]),
            "variants.0.content.steps.0.options.0.id",
        ),
        ("survey", _survey_with(dimension="csat\n"), "variants.0.content.steps.0.dimension"),
        ("survey", _survey_with(question={"en\n": "Why?"}), "variants.0.content.steps.0.question"),
        (
            "wheel",
            _wheel_with(reward={"type": "code", "code": "TEN\n"}),
            "variants.0.content.slices.0.reward.code",
        ),
        ("wheel", _wheel_with(color="#ff8800\n"), "variants.0.content.slices.0.color"),
    ],
    ids=["step-id", "option-id", "dimension", "locale", "fixed-code", "colour"],
)
def test_content_identifiers_with_a_trailing_newline_are_refused(
    admin, make_site, kind, content, field
):
    site = make_site()
    body = {
        "name": "C",
        "kind": kind,
        "variants": [{"name": "A", "is_control": True, "content": content}],
    }
    response = admin.post(f"/api/v1/admin/sites/{site['id']}/campaigns", json=body)
    assert field in fields_of(response)


def test_targeting_stage_keys_with_a_trailing_newline_are_refused(admin, make_site):
    site = make_site()
    body = {"name": "C", "kind": "survey", "targeting": {"stages_in": ["loyal\n"]}}
    response = admin.post(f"/api/v1/admin/sites/{site['id']}/campaigns", json=body)
    assert "targeting.stages_in.0" in fields_of(response)


def test_funnel_stage_keys_and_scores_with_a_trailing_newline_are_refused(admin, make_site):
    site = make_site()
    stages = [
        {"key": "new\n", "name": "New"},
        {"key": "fan", "name": "Fan", "rule": {"score": "csat\n", "gte": 4}},
    ]
    response = admin.client.put(
        f"/api/v1/admin/sites/{site['id']}/funnel/stages",
        json={"stages": stages},
        headers=admin.headers,
    )
    fields = fields_of(response)
    assert "stages.0.key" in fields
    assert "stages.1.rule.score" in fields


def test_admin_filters_and_paths_with_a_trailing_newline_are_refused(admin, make_site):
    site = make_site()
    export = admin.get(f"/api/v1/admin/sites/{site['id']}/responses.csv?stage=loyal%0A")
    assert "stage" in fields_of(export)
    path = admin.get(f"/api/v1/admin/sites/{site['id']}/visitors/{VISITOR}%0A/funnel")
    assert "visitor_id" in fields_of(path)


def test_coupon_prefix_and_imported_codes_with_a_trailing_newline_are_refused(admin, make_site):
    site = make_site()
    pool = admin.post(f"/api/v1/admin/sites/{site['id']}/coupon-pools", json={"name": "P"}).json
    generated = admin.post(
        f"/api/v1/admin/coupon-pools/{pool['id']}/generate", json={"count": 1, "prefix": "T-\n"}
    )
    assert "prefix" in fields_of(generated)
    imported = admin.post(
        f"/api/v1/admin/coupon-pools/{pool['id']}/import", json={"codes": ["GOOD1", "BAD1\n"]}
    )
    assert imported.status_code == 201, imported.json
    assert imported.json["imported"] == 1 and list(imported.json["invalid"]) == ["line 2"]
    assert db.session.scalars(select(CouponCode.code)).all() == ["GOOD1"]


def test_the_openapi_document_writes_the_patterns_for_ecma_regexes(client):
    # JSON Schema patterns are ECMA-262: there "$" is the end of the text and "\Z" no anchor.
    text = client.get("/api/v1/openapi.json").get_data(as_text=True)
    patterns = set(re.findall(r'"pattern": ?"((?:[^"\\]|\\.)*)"', text))
    assert patterns, "the document has no patterns to check"
    assert all(p.endswith("$") and "\\\\Z" not in p for p in patterns), patterns
