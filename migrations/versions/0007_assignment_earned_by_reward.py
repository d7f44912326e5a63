"""Assignments: a wheel assignment made only because a survey's thank-you step offers it.

Such an assignment lets its visitor spin only once they completed a survey that offers the wheel
(``services/spin.py``); decide offering the wheel itself clears the flag. Existing rows keep the
behaviour they had (False).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 21:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('assignments') as batch:
        batch.add_column(
            sa.Column('reward_only', sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade():
    with op.batch_alter_table('assignments') as batch:
        batch.drop_column('reward_only')
