"""Partial responses and where visitors drop off: the results' drop-off per step, the responses
page and the CSV export, against counts made here from exactly what was sent."""

import csv
import io
import random
from datetime import timedelta

from tests.helpers import decide, event, send_events, time_passes


def _send(client, site, campaign, plan):
    """``plan``: ``{visitor: [steps answered in order, ..., maybe "complete"]}``."""
    variant_id = campaign["variants"][0]["id"]
    events = []
    for visitor, actions in plan.items():
        decide(client, site, visitor)
        events.append(event("impression", visitor, campaign["id"], variant_id))
        for action in actions:
            if action == "complete":
                events.append(event("complete", visitor, campaign["id"], variant_id))
            else:
                value = "friend" if action == "q1" else 4
                data = {"step_id": action, "value": value}
                events.append(event("answer", visitor, campaign["id"], variant_id, **data))
    for start in range(0, len(events), 50):
        assert send_events(client, site, events[start : start + 50]).status_code == 202


def _plan(seed=3, visitors=40):
    """Visitors who stop at random points; some answer a step twice."""
    rng = random.Random(seed)
    plan = {}
    for n in range(visitors):
        actions = []
        for step in ("q1", "q2", "complete"):
            if rng.random() < 0.3:
                break
            actions.append(step)
            if step != "complete" and rng.random() < 0.2:
                actions.append(step)  # changed their mind: still one response at this step
        plan[f"visitor-{n:04d}"] = actions
    return plan


def test_the_drop_off_counts_what_was_sent(client, admin, page, make_site, make_campaign):
    site = make_site()
    campaign = make_campaign(site)
    plan = _plan()
    _send(client, site, campaign, plan)
    body = admin.get(f"/api/v1/admin/campaigns/{campaign['id']}/results").json
    [variant] = body["drop_off"]
    assert variant["shown"] == len(plan)
    assert [(s["step_id"], s["responses"]) for s in variant["steps"]] == [
        ("q1", sum("q1" in actions for actions in plan.values())),
        ("q2", sum("q2" in actions for actions in plan.values())),
    ]
    assert variant["completed"] == sum("complete" in actions for actions in plan.values())
    assert variant["steps"][1]["question"] == "How likely are you to buy?"

    html = page.get(f"/admin/campaigns/{campaign['id']}/results").get_data(as_text=True)
    assert "Where visitors drop off" in html


def test_partial_responses_say_where_the_visitor_stopped(
    client, admin, page, make_site, make_campaign
):
    site = make_site()
    campaign = make_campaign(site)
    plan = {
        "visitor-stop-1": ["q1"],
        "visitor-stop-2": ["q1", "q2"],
        "visitor-done": ["q1", "q2", "complete"],
    }
    _send(client, site, campaign, plan)
    url = f"/api/v1/admin/sites/{site['id']}/responses.csv?campaign_id={campaign['id']}"
    rows = list(csv.DictReader(io.StringIO(admin.get(url).get_data(as_text=True))))
    found = {row["visitor_id"]: (row["completed"], row["dropped_off_after"]) for row in rows}
    assert found == {
        "visitor-stop-1": ("no", "q1"),
        "visitor-stop-2": ("no", "q2"),
        "visitor-done": ("yes", ""),
    }
    html = page.get(f"/admin/sites/{site['id']}/responses").get_data(as_text=True)
    assert html.count(">partial<") == 2
    assert "stopped after “How likely are you to buy?”" in html


def test_a_recurring_surveys_next_round_counts_at_each_step_again(
    client, admin, make_site, make_campaign
):
    site = make_site()
    campaign = make_campaign(site, frequency={"repeat_after_days": 30})
    _send(client, site, campaign, {"visitor-0001": ["q1", "q2", "complete"]})
    time_passes(timedelta(days=31), "visitors", "assignments", "responses", "events")
    _send(client, site, campaign, {"visitor-0001": ["q1"]})
    body = admin.get(f"/api/v1/admin/campaigns/{campaign['id']}/results").json
    assert [s["responses"] for s in body["drop_off"][0]["steps"]] == [2, 1]
