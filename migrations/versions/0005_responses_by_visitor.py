"""Funnel: responses by visitor (rescoring after an answer, merging on identify).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 10:00:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    # Rescoring reads all of one visitor's responses; without this it scanned every response.
    op.create_index('ix_responses_visitor', 'responses', ['visitor_id'], unique=False)


def downgrade():
    op.drop_index('ix_responses_visitor', table_name='responses')
