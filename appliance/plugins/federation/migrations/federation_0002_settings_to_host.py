"""the XMPP service settings moved to the host's xmpp_settings: the plugin keeps only the
switch and the Test account

Revision ID: federation_0002
Revises: federation_0001
Create Date: 2026-12-03 13:50:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'federation_0002'
down_revision = 'federation_0001'
branch_labels = None
depends_on = None

#: Core migration 0008 copied these columns into the host's table before this runs (the
#: host's migrations run first), so dropping them loses nothing.
DATA_MOVED_TO = "xmpp_settings (core migration 0008)"
MOVED = ("domain", "c2s_port", "s2s_port", "interfaces", "cert_file", "key_file", "ca_file",
         "applied_at", "apply_message")


def upgrade():
    with op.batch_alter_table('federation_settings', schema=None) as batch_op:
        for name in MOVED:
            batch_op.drop_column(name)


def downgrade():
    with op.batch_alter_table('federation_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('domain', sa.String(length=253), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('c2s_port', sa.Integer(), nullable=False,
                                      server_default='5222'))
        batch_op.add_column(sa.Column('s2s_port', sa.Integer(), nullable=False,
                                      server_default='5269'))
        batch_op.add_column(sa.Column('interfaces', sa.String(length=255), nullable=False,
                                      server_default='*'))
        for name in ('cert_file', 'key_file', 'ca_file'):
            batch_op.add_column(sa.Column(name, sa.String(length=1024), nullable=False,
                                          server_default=''))
        batch_op.add_column(sa.Column('applied_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('apply_message', sa.Text(), nullable=False,
                                      server_default=''))
