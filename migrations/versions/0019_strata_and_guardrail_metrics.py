"""Strata and guardrail metrics: each assignment's stratum, rollups per stratum, and the order and
close rates counted from what is already stored.

``assignments.stratum`` keeps what was known about a visitor when decide assigned them (device,
new or returning, orders before, traffic source, funnel stage); ``stratum_metrics`` holds the
figures per variant, metric and stratum that post-stratification reads. Existing figures go into
the stratum ``""`` (assigned before strata were kept). The guardrail metrics ``order`` (ordered
after the first impression) and ``close`` (closed the popup) are counted once here from orders
and assignments, so that a guardrail of a running campaign sees its history; no event is read.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 09:00:00

"""

from collections import Counter
from datetime import UTC

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

#: The metrics with per-stratum figures: the exposures and every metric a test may judge.
STRATIFIED = (
    "exposure",
    "completion",
    "spin",
    "claim",
    "email_capture",
    "coupon_redemption",
    "revenue",
    "order",
    "close",
)
_FIGURES = ("visitors", "conversions", "value_sum", "value_sum_squares")


def upgrade():
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("stratum", sa.String(length=100), nullable=True))
    stratum_metrics = op.create_table(
        "stratum_metrics",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("variant_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("stratum", sa.String(length=100), nullable=False),
        sa.Column("visitors", sa.Integer(), nullable=False),
        sa.Column("conversions", sa.Integer(), nullable=False),
        sa.Column("value_sum", sa.Float(), nullable=False),
        sa.Column("value_sum_squares", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["variant_id"], ["variants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("campaign_id", "variant_id", "metric", "stratum"),
    )
    bind = op.get_bind()
    variant_metrics = sa.table(
        "variant_metrics",
        sa.column("campaign_id", sa.Integer()),
        sa.column("variant_id", sa.Integer()),
        sa.column("metric", sa.String()),
        sa.column("day", sa.Date()),
        *(sa.column(name, sa.Float()) for name in _FIGURES),
    )
    _count_guardrail_history(bind, variant_metrics)
    totals = bind.execute(
        sa.select(
            variant_metrics.c.campaign_id,
            variant_metrics.c.variant_id,
            variant_metrics.c.metric,
            *(sa.func.sum(variant_metrics.c[name]) for name in _FIGURES),
        )
        .where(variant_metrics.c.metric.in_(STRATIFIED))
        .group_by(
            variant_metrics.c.campaign_id, variant_metrics.c.variant_id, variant_metrics.c.metric
        )
    ).all()
    rows = [
        {
            "campaign_id": campaign_id,
            "variant_id": variant_id,
            "metric": metric,
            "stratum": "",
            "visitors": int(visitors or 0),
            "conversions": int(conversions or 0),
            "value_sum": float(value_sum or 0.0),
            "value_sum_squares": float(squares or 0.0),
        }
        for campaign_id, variant_id, metric, visitors, conversions, value_sum, squares in totals
    ]
    if rows:
        op.bulk_insert(stratum_metrics, rows)


def _count_guardrail_history(bind, variant_metrics) -> None:
    """``order`` and ``close`` for visitors exposed before this migration: a ``metric_conversions``
    row each (so that later events do not count them again) and their daily rollups."""
    assignments = sa.table(
        "assignments",
        sa.column("campaign_id", sa.Integer()),
        sa.column("visitor_id", sa.Integer()),
        sa.column("variant_id", sa.Integer()),
        sa.column("sampled_out", sa.Boolean()),
        sa.column("first_impression_at", sa.DateTime(timezone=True)),
        sa.column("last_closed_at", sa.DateTime(timezone=True)),
    )
    orders = sa.table(
        "orders",
        sa.column("visitor_id", sa.Integer()),
        sa.column("ordered_at", sa.DateTime(timezone=True)),
    )
    conversions = sa.table(
        "metric_conversions",
        sa.column("campaign_id", sa.Integer()),
        sa.column("visitor_id", sa.Integer()),
        sa.column("metric", sa.String()),
        sa.column("variant_id", sa.Integer()),
        sa.column("value", sa.Float()),
        sa.column("first_at", sa.DateTime(timezone=True)),
    )
    counted = sa.and_(
        assignments.c.variant_id.is_not(None),
        assignments.c.sampled_out == sa.false(),
        assignments.c.first_impression_at.is_not(None),
    )
    closes = bind.execute(
        sa.select(
            assignments.c.campaign_id,
            assignments.c.visitor_id,
            assignments.c.variant_id,
            assignments.c.first_impression_at,
            assignments.c.last_closed_at,
        ).where(counted, assignments.c.last_closed_at.is_not(None))
    ).all()
    first_orders = bind.execute(
        sa.select(
            assignments.c.campaign_id,
            assignments.c.visitor_id,
            assignments.c.variant_id,
            assignments.c.first_impression_at,
            sa.func.min(orders.c.ordered_at),
        )
        .join(orders, orders.c.visitor_id == assignments.c.visitor_id)
        .where(counted, orders.c.ordered_at >= assignments.c.first_impression_at)
        .group_by(
            assignments.c.campaign_id,
            assignments.c.visitor_id,
            assignments.c.variant_id,
            assignments.c.first_impression_at,
        )
    ).all()
    new_conversions = []
    daily = Counter()
    for metric, rows in (("close", closes), ("order", first_orders)):
        for campaign_id, visitor_id, variant_id, exposed_at, first_at in rows:
            new_conversions.append(
                {
                    "campaign_id": campaign_id,
                    "visitor_id": visitor_id,
                    "metric": metric,
                    "variant_id": variant_id,
                    "value": 0.0,
                    "first_at": first_at,
                }
            )
            # As the applier counts them: on the later of the impression and the conversion.
            day = _utc(max(_utc(exposed_at), _utc(first_at))).date()
            daily[(campaign_id, variant_id, metric, day)] += 1
    if new_conversions:
        op.bulk_insert(conversions, new_conversions)
    if daily:
        op.bulk_insert(
            variant_metrics,
            [
                {
                    "campaign_id": c,
                    "variant_id": v,
                    "metric": m,
                    "day": d,
                    "visitors": 0,
                    "conversions": n,
                    "value_sum": 0.0,
                    "value_sum_squares": 0.0,
                }
                for (c, v, m, d), n in sorted(daily.items())
            ],
        )


def _utc(moment):
    """A stored time as aware UTC (SQLite returns it naive, in UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def downgrade():
    bind = op.get_bind()
    for table in ("metric_conversions", "variant_metrics"):
        bind.execute(sa.text(f"DELETE FROM {table} WHERE metric IN ('order', 'close')"))
    op.drop_table("stratum_metrics")
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("stratum")
