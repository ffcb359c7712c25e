"""the department of a contact and an account (the roster groups accounts by it)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 15:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    for table in ('contact', 'account'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('department', sa.String(length=128), nullable=False,
                                          server_default=''))


def downgrade():
    for table in ('account', 'contact'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('department')
