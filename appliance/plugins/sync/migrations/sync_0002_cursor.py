"""synchronizers keep the directory's change marker of their last run (an incremental
resync reads what changed since) and how often a full reconciliation runs

Revision ID: sync_0002
Revises: sync_0001
Create Date: 2026-12-03 18:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'sync_0002'
down_revision = 'sync_0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sync_synchronizer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cursor', sa.Text(), nullable=False,
                                      server_default='{}'))
        batch_op.add_column(sa.Column('full_days', sa.Integer(), nullable=False,
                                      server_default='7'))


def downgrade():
    with op.batch_alter_table('sync_synchronizer', schema=None) as batch_op:
        batch_op.drop_column('full_days')
        batch_op.drop_column('cursor')
