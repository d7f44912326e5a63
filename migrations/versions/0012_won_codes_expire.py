"""Won codes may expire: spins and coupon codes carry the expiry the server set.

A wheel slice's ``expires_in_minutes`` gives the code a spin hands out an end: the spin keeps
it (its answer, and every repeated answer, carries ``expires_at``), and so does a pool code, so
that the orders webhook can refuse to count an order made after it without another lookup.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 18:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("spins") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("coupon_codes") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("coupon_codes") as batch:
        batch.drop_column("expires_at")
    with op.batch_alter_table("spins") as batch:
        batch.drop_column("expires_at")
