"""Hidden fields stored with the response: the popup sends the page's (URL query, tag), the
server adds identify's; the first value of each is kept; hostile values are refused whole."""

import csv
import io

import pytest
from sqlalchemy import select

from tests.helpers import decide, event, post_public, send_events, survey_content
from widget_server.extensions import db
from widget_server.models import Response

HIDDEN = [
    {"name": "utm", "source": "query", "key": "utm_source"},
    {"name": "tier", "source": "identify", "key": "loyalty_tier"},
]


@pytest.fixture
def survey(make_site, make_campaign):
    site = make_site()
    content = survey_content(hidden_fields=HIDDEN)
    campaign = make_campaign(site, variants=[{"name": "A", "is_control": True, "content": content}])
    return site, campaign


def _answer(client, site, campaign, hidden, step="q1", value="friend"):
    variant_id = campaign["variants"][0]["id"]
    data = {"step_id": step, "value": value, "hidden": hidden}
    sent = event("answer", "visitor-0001", campaign["id"], variant_id, **data)
    return send_events(client, site, [sent])


def _hidden() -> dict:
    db.session.expire_all()
    return db.session.scalar(select(Response.hidden))


def test_the_pages_fields_and_identifys_are_stored_and_the_first_value_kept(client, survey):
    site, campaign = survey
    decide(client, site)
    body = {"visitor_id": "visitor-0001", "attributes": {"loyalty_tier": "gold"}}
    assert post_public(client, site, "identify", body).status_code == 200
    assert _answer(client, site, campaign, {"utm": "newsletter"}).status_code == 202
    assert _hidden() == {"utm": "newsletter", "tier": "gold"}
    assert _answer(client, site, campaign, {"utm": "other"}, step="q2", value=3).status_code == 202
    assert _hidden() == {"utm": "newsletter", "tier": "gold"}


def test_the_export_carries_the_hidden_fields(client, admin, survey):
    site, campaign = survey
    decide(client, site)
    _answer(client, site, campaign, {"utm": "=cmd|x"})
    url = f"/api/v1/admin/sites/{site['id']}/responses.csv?campaign_id={campaign['id']}"
    [row] = list(csv.DictReader(io.StringIO(admin.get(url).get_data(as_text=True))))
    assert row["hidden"] == "utm: =cmd|x"  # not a formula: the cell starts with the name


@pytest.mark.parametrize(
    "hidden",
    [
        {f"f{n}": "x" for n in range(11)},
        {"utm": 5},
        {"utm": "x" * 201},
        {"not a name": "x"},
        ["utm", "x"],
    ],
)
def test_hostile_hidden_values_refuse_the_batch_naming_data(client, survey, hidden):
    site, campaign = survey
    decide(client, site)
    answer = _answer(client, site, campaign, hidden)
    assert answer.status_code == 400
    assert "data" in str(answer.json["error"]["fields"])
    assert db.session.scalar(select(Response.id)) is None


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ([{"name": "a", "source": "cookie", "key": "a"}], "source"),
        ([{"name": "a", "source": "query", "key": "a b"}], "key"),
        ([{"name": "a", "source": "query", "key": "a"}] * 2, "hidden_fields"),
    ],
)
def test_bad_hidden_field_declarations_are_a_400_naming_them(admin, make_site, fields, problem):
    site = make_site()
    variants = [{"name": "A", "is_control": True, "content": survey_content(hidden_fields=fields)}]
    body = {"name": "S", "kind": "survey", "variants": variants}
    answer = admin.post(f"/api/v1/admin/sites/{site['id']}/campaigns", json=body)
    assert answer.status_code == 400
    assert problem in str(answer.json["error"]["fields"])
