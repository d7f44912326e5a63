"""The applier reads its chunk's kept conversions through the visitor index, whatever plan the
server made while the table was small."""

from types import SimpleNamespace

import pytest
from sqlalchemy import text

from widget_server.extensions import db
from widget_server.services.platform.plans import NO_TABLE_SCANS
from widget_server.services.promotion import metrics


def read_kept(campaign_id: int, visitor_ids: list[int]) -> dict:
    db.session.execute(text(NO_TABLE_SCANS))  # as the applier's chunk reads
    folded = [SimpleNamespace(campaign_id=campaign_id, visitor_id=v) for v in visitor_ids]
    return metrics.IngestMetrics(folded).converted


def test_kept_conversions_are_read_by_visitor_though_planned_while_the_table_was_small(
    app, make_site, make_campaign
):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    site = make_site()
    campaign = make_campaign(site)
    db.session.execute(
        text(
            "INSERT INTO visitors (site_id, visitor_key, attributes, scores, order_count,"
            " total_spent, email_consent, first_seen_at, last_seen_at)"
            " SELECT :site, 'kept-' || n, '{}', '{}', 0, 0, false, now(), now()"
            " FROM generate_series(1, 8000) AS n"
        ),
        {"site": site["id"]},
    )
    db.session.execute(text("ANALYZE metric_conversions"))
    db.session.commit()
    visitor_ids = list(db.session.scalars(text("SELECT id FROM visitors ORDER BY id")))
    chunk = visitor_ids[-400:]
    backend = db.session.scalar(text("SELECT pg_backend_pid()"))
    for _ in range(12):  # a prepared read would be planned once, now, at the 10th run
        assert read_kept(campaign["id"], chunk) == {}
        db.session.commit()
    db.session.execute(
        text(
            "INSERT INTO metric_conversions (campaign_id, visitor_id, metric, phase, variant_id,"
            " value, first_at) SELECT :campaign, id, 'completion', 0, NULL, 0, now()"
            " FROM visitors"
        ),
        {"campaign": campaign["id"]},
    )
    db.session.commit()

    kept = read_kept(campaign["id"], chunk)

    assert len(kept) == 400 and all(v == {"completion": 0.0} for v in kept.values())
    assert db.session.scalar(text("SELECT pg_backend_pid()")) == backend
    prepared = db.session.scalar(
        text("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%metric_conv%'")
    )
    assert prepared == 0  # planned for its values at every run
    array = "'{" + ",".join(map(str, chunk)) + "}'"
    read = metrics.KEPT_BY_VISITOR.replace("%(visitor_ids)s", array)
    plan = "\n".join(db.session.scalars(text("EXPLAIN " + read)))
    assert "ix_metric_conversions_visitor" in plan and "pkey" not in plan, plan
    db.session.rollback()
