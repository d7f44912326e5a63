"""Responses: the hidden fields a survey stores with its answers (page URL, tag, identify).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 17:35:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    json_type = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')
    with op.batch_alter_table('responses') as batch:
        batch.add_column(sa.Column('hidden', json_type, nullable=False, server_default='{}'))


def downgrade():
    with op.batch_alter_table('responses') as batch:
        batch.drop_column('hidden')
