"""Responses: a round number, so a survey shown again (quarterly NPS) keeps each round's answers.

A campaign's ``frequency.repeat_after_days`` shows a completed survey again after that many days;
the visitor's answers then go to a new response, the next round. Existing responses are round 1.
The unique key of a response becomes (campaign, visitor, round).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 17:10:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('responses') as batch:
        batch.add_column(sa.Column('round', sa.Integer(), nullable=False, server_default='1'))
        batch.drop_constraint('uq_responses_campaign_visitor', type_='unique')
        batch.create_unique_constraint(
            'uq_responses_campaign_visitor_round', ['campaign_id', 'visitor_id', 'round']
        )


def downgrade():
    # Only the first round of each response survives a downgrade.
    op.execute("DELETE FROM responses WHERE round > 1")
    with op.batch_alter_table('responses') as batch:
        batch.drop_constraint('uq_responses_campaign_visitor_round', type_='unique')
        batch.create_unique_constraint(
            'uq_responses_campaign_visitor', ['campaign_id', 'visitor_id']
        )
        batch.drop_column('round')
