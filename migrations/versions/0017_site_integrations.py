"""Store platforms: a site's integrations, and the platform deliveries that recorded an order.

``sites.integrations`` holds, per store platform (Shopify, WooCommerce), the secret its order
webhooks are signed with and whether the snippet links carts (``{}`` for every existing site:
nothing is received until an owner sets a secret). ``platform_receipts`` keeps the platform's
delivery id of each webhook that recorded an order, unique per site and platform, so a platform
retrying the same delivery changes nothing.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 10:00:00

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sites") as batch:
        batch.add_column(
            sa.Column(
                "integrations",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                server_default="{}",
                nullable=False,
            )
        )
    op.create_table(
        "platform_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("webhook_id", sa.String(length=200), nullable=False),
        sa.Column("order_ref", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "site_id", "platform", "webhook_id", name="uq_platform_receipts_delivery"
        ),
    )


def downgrade():
    op.drop_table("platform_receipts")
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("integrations")
