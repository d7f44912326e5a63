"""Funnel indexes: merged visitors by survivor; orders per customer with their totals.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 23:45:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    # Restaging after an order and merging on identify look visitors up by merged_into_id.
    op.create_index('ix_visitors_merged_into', 'visitors', ['merged_into_id'], unique=False)
    # The funnel's customer figures group orders by customer: on PostgreSQL the totals ride in
    # the index, so the grouping streams from an index-only scan.
    op.drop_index('ix_orders_site_customer', table_name='orders')
    op.create_index(
        'ix_orders_site_customer',
        'orders',
        ['site_id', 'customer_id'],
        unique=False,
        postgresql_include=['total'],
    )


def downgrade():
    op.drop_index('ix_orders_site_customer', table_name='orders')
    op.create_index('ix_orders_site_customer', 'orders', ['site_id', 'customer_id'], unique=False)
    op.drop_index('ix_visitors_merged_into', table_name='visitors')
