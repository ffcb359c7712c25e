"""enterprise of a network element (its users are that enterprise's accounts)

Revision ID: network_elements_0003
Revises: network_elements_0002
Create Date: 2026-12-04 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'network_elements_0003'
down_revision = 'network_elements_0002'
branch_labels = None
depends_on = None


def upgrade():
    # A table of its own, not a column of network_elements_element: on SQLite a foreign key
    # is added to an existing table by copying it and dropping the old one, which deletes
    # the IDS set-ups and queued changes that refer to it (see models.ElementEnterprise).
    op.create_table('network_elements_element_enterprise',
    sa.Column('element_id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['element_id'], ['network_elements_element.id'], name=op.f('fk_network_elements_element_enterprise_element_id_network_elements_element'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'], name=op.f('fk_network_elements_element_enterprise_enterprise_id_enterprise'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('element_id', name=op.f('pk_network_elements_element_enterprise'))
    )
    with op.batch_alter_table('network_elements_element_enterprise', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_elements_element_enterprise_enterprise_id'), ['enterprise_id'], unique=False)


def downgrade():
    op.drop_table('network_elements_element_enterprise')
