"""Events are a log: no foreign keys, and no indexes that no query reads.

Every event row was checked against four parents (site, campaign, variant, visitor), each check a
lookup and a share lock on the parent row that every concurrent insert of the same site takes
again; on PostgreSQL that was a third of an insert's cost. The application is what guarantees
those ids (the endpoint takes the site, campaign and variant ids from the site's configuration,
the applier the visitor it just resolved), and it deletes none of those parents, so the
constraints guarded only deletes made by hand. ``ix_events_campaign_type`` and
``ix_events_visitor`` served those cascades alone: no query of the application reads events by
campaign or by visitor id, and each cost an index entry at every insert and again when the
applier writes the visitor back.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 02:00:00

"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

#: The parents, by column; PostgreSQL named each constraint ``events_<column>_fkey``.
PARENTS = {
    "site_id": "sites",
    "visitor_id": "visitors",
    "campaign_id": "campaigns",
    "variant_id": "variants",
}
#: SQLite's constraints have no name: the batch names them by this pattern to drop them.
_NAMES = {"fk": "events_%(column_0_name)s_fkey"}


def upgrade():
    op.drop_index("ix_events_campaign_type", table_name="events")
    op.drop_index("ix_events_visitor", table_name="events")
    with op.batch_alter_table("events", naming_convention=_NAMES) as batch:
        for column in PARENTS:
            batch.drop_constraint(f"events_{column}_fkey", type_="foreignkey")


def downgrade():
    with op.batch_alter_table("events", naming_convention=_NAMES) as batch:
        for column, parent in PARENTS.items():
            batch.create_foreign_key(
                f"events_{column}_fkey", parent, [column], ["id"], ondelete="CASCADE"
            )
    op.create_index("ix_events_visitor", "events", ["visitor_id"])
    op.create_index("ix_events_campaign_type", "events", ["campaign_id", "type"])
