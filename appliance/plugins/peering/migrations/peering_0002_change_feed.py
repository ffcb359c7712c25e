"""a MiCollab peer's change feed: the cursor of its last sync, and full re-syncs

Revision ID: peering_0002
Revises: peering_0001
Create Date: 2026-12-03 18:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'peering_0002'
down_revision = 'peering_0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('peering_peer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('feed_cursor', sa.String(length=32), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('full_days', sa.Integer(), nullable=False,
                                      server_default='7'))
        batch_op.add_column(sa.Column('full_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('peering_peer', schema=None) as batch_op:
        batch_op.drop_column('full_at')
        batch_op.drop_column('full_days')
        batch_op.drop_column('feed_cursor')
