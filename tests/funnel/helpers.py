"""Driving the funnel the way production does (events, identify and orders over HTTP) and
reading it through the admin API."""

from flask import current_app
from sqlalchemy import select

from tests.helpers import decide, event, post_public, send_events
from tests.rewards.helpers import post_order
from widget_server.extensions import db
from widget_server.models import Order, StageChange, Visitor
from widget_server.services.campaigns.templates import loyalty_questionnaire

_order_numbers = iter(range(1, 10**9))


def loyalty_campaign(make_campaign, site, **fields):
    """The demo's loyalty questionnaire as a running campaign with one variant."""
    return make_campaign(
        site,
        variants=[
            {"name": "A", "is_control": True, "content": loyalty_questionnaire("Three questions")}
        ],
        **fields,
    )


def answer_survey(client, site, campaign, visitor_key, answers: dict, complete=True):
    """Answer steps (``{step_id: value}``) of a campaign through the events API, after the
    decide that offers it (the server folds answers only to a campaign it assigned)."""
    assert decide(client, site, visitor_key).status_code == 200
    variant_id = campaign["variants"][0]["id"]
    events = [
        event("answer", visitor_key, campaign["id"], variant_id, step_id=step, value=value)
        for step, value in answers.items()
    ]
    if complete:
        events.append(event("complete", visitor_key, campaign["id"], variant_id))
    response = send_events(client, site, events)
    assert response.status_code == 202, response.json
    return response


def visitor(site, visitor_key) -> Visitor:
    db.session.expire_all()
    return db.session.scalar(
        select(Visitor).where(Visitor.site_id == site["id"], Visitor.visitor_key == visitor_key)
    )


def place_order(site, visitor_key=None, total="10.00", customer_id=None, when=None):
    """Report an order through the shop's signed orders webhook (which restages the buyer)."""
    body = {
        "order_id": f"order-{next(_order_numbers)}",
        "visitor_id": visitor_key,
        "customer_id": customer_id,
        "total": total,
        "currency": "EUR",
        **({"created_at": when.isoformat()} if when else {}),
    }
    response = post_order(current_app.test_client(), site, body)
    assert response.status_code == 201, response.json
    db.session.expire_all()
    return db.session.scalar(select(Order).where(Order.order_ref == body["order_id"]))


def history(site, visitor_key) -> list[tuple]:
    found = visitor(site, visitor_key)
    return [
        (c.from_stage, c.to_stage, c.cause)
        for c in db.session.scalars(
            select(StageChange)
            .where(StageChange.visitor_id == found.id)
            .order_by(StageChange.changed_at, StageChange.id)
        )
    ]


def identify(client, site, body, **kwargs):
    return post_public(client, site, "identify", body, **kwargs)


def figures(admin, site, **query) -> dict:
    """The site's funnel figures from the admin API."""
    response = admin.get(f"/api/v1/admin/sites/{site['id']}/funnel", query_string=query)
    assert response.status_code == 200, response.json
    return response.json


def put_stages(admin, site, stages) -> None:
    """Replace the site's funnel stages through the admin API."""
    response = admin.put(f"/api/v1/admin/sites/{site['id']}/funnel/stages", json={"stages": stages})
    assert response.status_code == 200, response.json
