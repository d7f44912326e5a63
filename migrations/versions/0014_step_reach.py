"""Step reach: how many responses of each variant answered each survey step (the drop-off chart).

The applier counts a response's first answer to a step; existing responses are counted here once
from their stored answers.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 17:20:00

"""
from collections import Counter

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    step_reach = op.create_table(
        'step_reach',
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('variant_id', sa.Integer(), nullable=False),
        sa.Column('step_id', sa.String(length=64), nullable=False),
        sa.Column('responses', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['variant_id'], ['variants.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('campaign_id', 'variant_id', 'step_id'),
    )
    responses = sa.table(
        'responses',
        sa.column('campaign_id', sa.Integer()),
        sa.column('variant_id', sa.Integer()),
        sa.column('answers', sa.JSON()),
    )
    reached = Counter()
    rows = op.get_bind().execute(
        sa.select(responses.c.campaign_id, responses.c.variant_id, responses.c.answers).where(
            responses.c.variant_id.is_not(None)
        )
    )
    for campaign_id, variant_id, answers in rows:
        for step_id in answers or {}:
            reached[(campaign_id, variant_id, step_id)] += 1
    if reached:
        op.bulk_insert(
            step_reach,
            [
                {'campaign_id': c, 'variant_id': v, 'step_id': s, 'responses': n}
                for (c, v, s), n in sorted(reached.items())
            ],
        )


def downgrade():
    op.drop_table('step_reach')
