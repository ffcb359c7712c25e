"""who is signed in to the XMPP service, as it reports

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 14:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('xmpp_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('jid', sa.String(length=520), nullable=False),
    sa.Column('resource', sa.String(length=255), nullable=False),
    sa.Column('since', sa.DateTime(), nullable=True),
    sa.Column('reported_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'], name=op.f('fk_xmpp_session_enterprise_id_enterprise'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_xmpp_session'))
    )
    with op.batch_alter_table('xmpp_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_xmpp_session_enterprise_id'), ['enterprise_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_xmpp_session_jid'), ['jid'], unique=False)
    with op.batch_alter_table('xmpp_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sessions_reported_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('xmpp_settings', schema=None) as batch_op:
        batch_op.drop_column('sessions_reported_at')
    op.drop_table('xmpp_session')
