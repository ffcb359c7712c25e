"""the XMPP service's settings move to the host (from the federation plugin's table)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 13:50:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

COLUMNS = ("id", "domain", "c2s_port", "s2s_port", "interfaces", "cert_file", "key_file",
           "ca_file", "applied_at", "apply_message")


def upgrade():
    op.create_table('xmpp_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain', sa.String(length=253), nullable=False),
    sa.Column('c2s_port', sa.Integer(), nullable=False),
    sa.Column('s2s_port', sa.Integer(), nullable=False),
    sa.Column('interfaces', sa.String(length=255), nullable=False),
    sa.Column('cert_file', sa.String(length=1024), nullable=False),
    sa.Column('key_file', sa.String(length=1024), nullable=False),
    sa.Column('ca_file', sa.String(length=1024), nullable=False),
    sa.Column('applied_at', sa.DateTime(), nullable=True),
    sa.Column('apply_message', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_xmpp_settings'))
    )
    # An appliance that ran the federation plugin keeps its settings (the plugin's own
    # migration then drops the columns it no longer owns).
    if 'federation_settings' in sa.inspect(op.get_bind()).get_table_names():
        cols = ", ".join(COLUMNS)
        op.execute(f"INSERT INTO xmpp_settings ({cols}) SELECT {cols} FROM federation_settings")


def downgrade():
    op.drop_table('xmpp_settings')
