"""Migration 0019 counts the guardrails' history: run against live data, then rolled back to
0016 (which forgets order, close and strata) and forward again, it finds the same visitors
ordering and closing as the live services counted, and puts every figure in the stratum ``""``."""

from collections import defaultdict

from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from tests.helpers import decide, event, send_events
from tests.rewards.helpers import post_order
from widget_server.extensions import db


def totals(table: str) -> dict:
    rows = db.session.execute(
        text(
            f"SELECT campaign_id, variant_id, metric, SUM(visitors), SUM(conversions),"
            f" SUM(value_sum) FROM {table} WHERE metric IN"
            " ('exposure', 'completion', 'revenue', 'order', 'close')"
            " GROUP BY campaign_id, variant_id, metric"
        )
    ).all()
    return {(c, v, m): (int(n), int(x), round(float(s), 6)) for c, v, m, n, x, s in rows}


def converted() -> set:
    rows = db.session.execute(
        text(
            "SELECT campaign_id, visitor_id, metric FROM metric_conversions"
            " WHERE metric IN ('order', 'close')"
        )  # fmt: skip
    ).all()
    return set(map(tuple, rows))


def test_a_rolled_back_database_gets_its_order_and_close_history_back(app, client, ab_test):
    site, campaign, _ = ab_test()
    cid = campaign["id"]
    events = []
    for i in range(24):
        key = f"visitor-m-{i:04d}"
        variant = next(
            c["variant_id"]
            for c in decide(client, site, key, device=("mobile", "desktop")[i % 2]).json[
                "campaigns"
            ]
            if c["campaign_id"] == cid
        )
        events.append(event("impression", key, cid, variant))
        if i % 3 == 0:
            events += [event("close", key, cid, variant)] * (1 + i % 2)
        if i % 4 == 1:
            events.append(event("complete", key, cid, variant))
    assert send_events(client, site, events).status_code == 202
    for i in range(0, 24, 2):
        for n in range(1 + i % 3):
            order = {"order_id": f"m-{i}-{n}", "visitor_id": f"visitor-m-{i:04d}",
                     "total": 10.0 + i + n, "currency": "EUR"}  # fmt: skip
            assert post_order(client, site, order).status_code == 201
    live, live_converted = totals("variant_metrics"), converted()
    assert {m for _, _, m in live} >= {"order", "close"}

    db.session.remove()
    directory = app.extensions["migrate"].directory
    downgrade(directory=directory, revision="0016")
    assert converted() == set()
    db.session.remove()  # its read would hold off the upgrade's new keys (0020)
    upgrade(directory=directory)

    assert totals("variant_metrics") == live
    assert converted() == live_converted
    assert totals("stratum_metrics") == live
    strata = db.session.execute(text("SELECT DISTINCT stratum FROM stratum_metrics")).scalars()
    assert set(strata) == {""}
    per_metric = defaultdict(int)
    for (_, _, metric), (_, conversions, _) in live.items():
        per_metric[metric] += conversions
    assert per_metric["order"] == 12 and per_metric["close"] == 8
