"""Phases of an experiment: each campaign's current phase and history, each assignment's and
decision's phase, and the phase in the keys of the rollups.

Editing a running campaign's content, weights, targeting or trigger starts a new phase, and the
statistics read one phase at a time. Everything that exists is phase 1: the column defaults fill
the existing rows, and the rollups' primary keys gain the phase.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 09:00:00

"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

#: The rollups and their primary keys, the phase placed before the last key column.
KEYS = {
    "variant_metrics": ("campaign_id", "variant_id", "metric", "phase", "day"),
    "stratum_metrics": ("campaign_id", "variant_id", "metric", "phase", "stratum"),
    "step_reach": ("campaign_id", "variant_id", "step_id", "phase"),
    "metric_conversions": ("campaign_id", "visitor_id", "metric", "phase"),
}


def _phase_column():
    return sa.Column("phase", sa.Integer(), nullable=False, server_default=sa.text("1"))


def upgrade():
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(_phase_column())
        batch.add_column(sa.Column("phase_started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("phase_history", sa.JSON().with_variant(
            sa.dialects.postgresql.JSONB(), "postgresql"), nullable=True))
    for table in ("assignments", "decisions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(_phase_column())
    for table, keys in KEYS.items():
        _rekey(table, keys, add_phase=True)


def _rekey(table: str, keys: tuple, add_phase: bool) -> None:
    """Give ``table`` the primary key ``keys`` (adding or dropping the phase column first)."""
    name = f"{table}_pkey"
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(name, table, type_="primary")
        if add_phase:
            op.add_column(table, _phase_column())
        else:
            op.drop_column(table, "phase")
        op.create_primary_key(name, table, list(keys))
        return
    # SQLite copies the table with the new key; SQLAlchemy warns that the copy's key differs
    # from the reflected one, which is the point.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Table '_alembic_tmp_", sa.exc.SAWarning)
        with op.batch_alter_table(table, recreate="always") as batch:
            if add_phase:
                batch.add_column(_phase_column())
            else:
                batch.drop_column("phase")
            batch.create_primary_key(name, list(keys))


def downgrade():
    bind = op.get_bind()
    # Only phase 1 fits the old keys: the later phases' figures go.
    for table, keys in KEYS.items():
        bind.execute(sa.text(f"DELETE FROM {table} WHERE phase <> 1"))
        _rekey(table, tuple(k for k in keys if k != "phase"), add_phase=False)
    for table in ("assignments", "decisions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("phase")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("phase_history")
        batch.drop_column("phase_started_at")
        batch.drop_column("phase")
