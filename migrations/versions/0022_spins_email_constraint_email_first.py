"""Spins: the one-spin-per-e-mail constraint keyed by e-mail first, so a wheel's spins have one
index that starts with the campaign.

Every spin looks for the visitor's earlier spin by (campaign, visitor): ``uq_spins_campaign_visitor``.
With ``uq_spins_campaign_email`` also starting with the campaign, PostgreSQL weighed the two as
equal while a new wheel's statistics (taken before its first spin, renewed by autovacuum a minute
or more later) said the wheel had no spin, and could take the e-mail one: a walk over every spin
of the wheel, filtered by visitor, at each spin. Keyed (e-mail, campaign) the constraint still
allows one spin per e-mail address per campaign, and serves reads by e-mail.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 22:30:00

"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("spins", schema=None) as batch_op:
        batch_op.drop_constraint("uq_spins_campaign_email", type_="unique")
        batch_op.create_unique_constraint("uq_spins_email_campaign", ["email", "campaign_id"])


def downgrade():
    with op.batch_alter_table("spins", schema=None) as batch_op:
        batch_op.drop_constraint("uq_spins_email_campaign", type_="unique")
        batch_op.create_unique_constraint("uq_spins_campaign_email", ["campaign_id", "email"])
