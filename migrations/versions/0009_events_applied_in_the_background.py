"""Events are stored by the endpoint and applied by a background applier.

The endpoint inserts a batch in one statement with the browser's visitor id (``visitor_key``) and
``pending`` set; the applier resolves visitors and variants and folds the events into
assignments, responses and rollups, clearing ``pending`` in the same transaction. Rows stored
before this revision were applied already: the column's default (false) keeps them so, without
rewriting the table (PostgreSQL adds a column with a constant default in place).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:10:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("visitor_key", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("pending", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.alter_column("visitor_id", existing_type=sa.Integer(), nullable=True)
    op.create_index(
        "ix_events_pending",
        "events",
        ["id"],
        postgresql_where=sa.text("pending"),
        sqlite_where=sa.text("pending"),
    )
    op.create_index(
        "ix_events_pending_visitor",
        "events",
        ["site_id", "visitor_key"],
        postgresql_where=sa.text("pending"),
        sqlite_where=sa.text("pending"),
    )


def downgrade():
    op.drop_index("ix_events_pending_visitor", table_name="events")
    op.drop_index("ix_events_pending", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.alter_column("visitor_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("pending")
        batch.drop_column("visitor_key")
