"""Funnel figure snapshots live in the database, refreshed by the worker.

Each web process used to keep its own snapshots and recompute a stale one in a thread of its
own. Now one row per (site, campaign, weeks) holds the latest figures for every process; a
reader that finds them stale sets ``refresh_requested_at`` and the worker's ``funnel-figures``
job recomputes them, so web processes start no thread.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 09:00:00

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "funnel_snapshots",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("weeks", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refresh_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "body", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id", "campaign_id", "weeks"),
    )


def downgrade():
    op.drop_table("funnel_snapshots")
