"""Admin sessions: one row per admin-page login, so logging out ends it on the server.

The signed session cookie used to be the whole session: a copy taken before logout still worked
until it expired. Now the cookie carries a random token whose SHA-256 must be a row here; logout
deletes that row, and "log out everywhere", a password change and a lockout delete all rows of
the user. Existing cookies carry no token, so every admin logs in once more after the upgrade.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('admin_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['admin_users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_index('ix_admin_sessions_user_id', 'admin_sessions', ['user_id'], unique=False)


def downgrade():
    op.drop_index('ix_admin_sessions_user_id', table_name='admin_sessions')
    op.drop_table('admin_sessions')
