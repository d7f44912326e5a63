"""Response webhooks: deliveries sent once per key, and the partial responses' scan watermark.

A site's ``response_webhook`` announces completed and abandoned survey responses. Each delivery
carries a key (response, round, event) under a unique constraint, so an event applied twice or a
scan run twice records nothing new; ``job_watermarks`` keeps how far the worker's scan for
abandoned responses has come.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 10:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("delivery_key", sa.String(length=128), nullable=True))
        batch.create_unique_constraint("uq_webhook_deliveries_delivery_key", ["delivery_key"])
    op.create_table(
        "job_watermarks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade():
    op.drop_table("job_watermarks")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_constraint("uq_webhook_deliveries_delivery_key", type_="unique")
        batch.drop_column("delivery_key")
