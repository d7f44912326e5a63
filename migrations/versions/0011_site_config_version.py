"""Sites carry a configuration version, raised with every change decide caches.

Web workers cached a site's running campaigns for up to ``CONFIG_CACHE_TTL_S`` (5 s), so a
promotion made by the worker, or an edit made through another web worker, reached a worker only
when its copy expired. Now every such change raises ``sites.config_version`` in its own
transaction, and each worker compares its copy's version with the stored one twice a second.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 15:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sites") as batch:
        batch.add_column(
            sa.Column("config_version", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade():
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("config_version")
