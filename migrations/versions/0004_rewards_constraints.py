"""Rewards: pool names unique per site, one spin per e-mail per campaign, order payload hash.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 10:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    # `funnelcake import-coupons --pool NAME` and the demo find a pool by its name.
    with op.batch_alter_table('coupon_pools', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_coupon_pools_site_name', ['site_id', 'name'])
    # One reward per e-mail address per campaign; rows without an e-mail (NULL) never clash.
    with op.batch_alter_table('spins', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_spins_campaign_email', ['campaign_id', 'email'])
    # A replayed order must carry the same body as the first; a different one is a conflict.
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payload_sha256', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('payload_sha256')
    with op.batch_alter_table('spins', schema=None) as batch_op:
        batch_op.drop_constraint('uq_spins_campaign_email', type_='unique')
    with op.batch_alter_table('coupon_pools', schema=None) as batch_op:
        batch_op.drop_constraint('uq_coupon_pools_site_name', type_='unique')
