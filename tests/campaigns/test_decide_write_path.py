"""A first decide stores the visitor and their assignments through the events write path: the
answer is durable when it goes out, the first decide's variant is the visitor's everywhere
(pending or applied), and no browser can send decide's own rows."""

from datetime import timedelta

from sqlalchemy import func, select

from tests.helpers import decide, event, send_events, survey_variants, time_passes
from widget_server.extensions import db
from widget_server.models import DECIDE_EVENT_TYPES, Assignment, Event, Visitor
from widget_server.services.ingest import applier


def _variant(client, site, visitor="visitor-0001"):
    answer = decide(client, site, visitor)
    assert answer.status_code == 200, answer.json
    return [(o["campaign_id"], o["variant_id"]) for o in answer.json["campaigns"]]


def _deferred(make_app):
    """A worker whose events (and decide's rows) wait for the applier, keeping no states."""
    return make_app(EVENTS_APPLY_INLINE=False, VISITOR_STATE_TTL_S=0.0).test_client()


def test_a_first_decide_stores_the_visit_and_the_assignment_as_pending_rows(
    make_app, make_site, make_campaign
):
    client = _deferred(make_app)
    site = make_site()
    campaign = make_campaign(site, variants=survey_variants("AB", weights=[1, 1]))
    [(_, shown)] = _variant(client, site)
    db.session.rollback()
    rows = db.session.execute(
        select(Event.type, Event.campaign_id, Event.variant_id, Event.pending).order_by(Event.id)
    ).all()
    assert [tuple(r) for r in rows] == [
        ("visit", None, None, True),
        ("assign", campaign["id"], shown, True),
    ]
    assert db.session.scalar(select(func.count()).select_from(Visitor)) == 0

    applier.apply_all()
    db.session.rollback()
    stored = db.session.execute(select(Assignment.campaign_id, Assignment.variant_id)).all()
    assert [tuple(r) for r in stored] == [(campaign["id"], shown)]
    # Applied twice (a crash after the commit, a re-sent row): still one assignment.
    assert applier.apply_all() == 0
    assert db.session.scalar(select(func.count()).select_from(Assignment)) == 1


def test_the_first_variant_wins_on_every_worker_while_pending_and_after_weights_change(
    make_app, make_site, make_campaign, admin
):
    site = make_site()
    campaign = make_campaign(site, variants=survey_variants("AB", weights=[1, 0]))
    a, b = (v["id"] for v in campaign["variants"])
    first, second = _deferred(make_app), _deferred(make_app)
    assert _variant(first, site) == [(campaign["id"], a)]
    for variant_id, weight in ((a, 0), (b, 1)):
        changed = admin.patch(f"/api/v1/admin/variants/{variant_id}", json={"weight": weight})
        assert changed.status_code == 200, changed.json
    assert _variant(second, site, "visitor-0002") == [(campaign["id"], b)]  # the new weights
    assert _variant(second, site) == [(campaign["id"], a)]  # pending, still the first one
    applier.apply_all()
    assert _variant(second, site) == [(campaign["id"], a)]
    db.session.rollback()
    assert (
        db.session.scalar(
            select(Assignment.variant_id).join(Visitor).where(Visitor.visitor_key == "visitor-0001")
        )
        == a
    )


def test_a_visitor_met_days_ago_is_returning_before_the_applier_stored_them(
    make_app, make_site, make_campaign
):
    client = _deferred(make_app)
    site = make_site()
    new_only = make_campaign(site, name="new", targeting={"visitor": "new"})
    returning = make_campaign(site, name="back", targeting={"visitor": "returning"})
    assert [c for c, _ in _variant(client, site)] == [new_only["id"]]
    time_passes(timedelta(days=2))
    assert [c for c, _ in _variant(client, site)] == [returning["id"]]
    applier.apply_all()
    db.session.rollback()
    met = db.session.scalar(select(Visitor.first_seen_at))
    assert met < db.session.scalar(select(func.max(Event.received_at))) - timedelta(days=1)


def test_a_browser_cannot_send_decides_own_rows(client, make_site, make_campaign):
    site = make_site()
    campaign = make_campaign(site, variants=survey_variants("AB", weights=[1, 1]))
    for kind in DECIDE_EVENT_TYPES:
        forged = event(kind, "visitor-0001", campaign["id"], campaign["variants"][1]["id"])
        answer = send_events(client, site, [forged])
        assert answer.status_code == 400, answer.json
        assert "events.0.type" in answer.json["error"]["fields"]
    assert db.session.scalar(select(func.count()).select_from(Event)) == 0


def test_a_browser_reusing_a_decide_row_id_changes_no_assignment(
    make_app, make_site, make_campaign
):
    """Decide's row ids are derived from the visitor and campaign; a browser sending an event
    with such an id is stored under the browser's own type or skipped, never as an assignment."""
    client = _deferred(make_app)
    site = make_site()
    campaign = make_campaign(site, variants=survey_variants("AB", weights=[1, 0]))
    a, b = (v["id"] for v in campaign["variants"])
    assert _variant(client, site) == [(campaign["id"], a)]
    stored_id = db.session.scalar(select(Event.event_uuid).where(Event.type == "assign"))
    replay = {**event("impression", "visitor-0001", campaign["id"], b), "id": stored_id}
    answer = send_events(client, site, [replay])
    assert answer.status_code in (202, 400), answer.json
    applier.apply_all()
    assert _variant(client, site) == [(campaign["id"], a)]
