"""Migration 0020 puts everything that exists in phase 1: rolled back to 0019 with live figures
and forward again, every campaign, assignment and rollup row is phase 1 and the results are the
same."""

from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from tests.promotion.helpers import simulate
from widget_server.extensions import db

PHASED = ("campaigns", "assignments", "decisions", "variant_metrics", "stratum_metrics")


def test_existing_rows_are_phase_1_after_the_migration(app, client, admin, ab_test):
    site, campaign, (a, b) = ab_test()
    simulate(client, site, campaign["id"], {a: 0.2, b: 0.4}, visitors=60, seed=7)
    url = f"/api/v1/admin/campaigns/{campaign['id']}/results"
    before = admin.get(url).json["variants"]

    db.session.remove()
    directory = app.extensions["migrate"].directory
    downgrade(directory=directory, revision="0019")
    db.session.remove()
    upgrade(directory=directory)

    for table in PHASED:
        phases = db.session.execute(text(f"SELECT DISTINCT phase FROM {table}")).scalars()
        assert set(phases) <= {1}, table
    assert db.session.scalar(text("SELECT COUNT(*) FROM variant_metrics WHERE phase = 1"))
    after = admin.get(url).json
    assert after["phase"] == 1 and [p["number"] for p in after["phases"]] == [1]
    assert [(v["visitors"], v["conversions"]) for v in after["variants"]] == [
        (v["visitors"], v["conversions"]) for v in before
    ]
