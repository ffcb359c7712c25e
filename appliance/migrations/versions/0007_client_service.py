"""client service: IM domains, account sign-in, XMPP passwords and signals

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 13:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('enterprise', schema=None) as batch_op:
        batch_op.add_column(sa.Column('im_domain', sa.String(length=253), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_enterprise_im_domain'), ['im_domain'])

    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('enabled', sa.Boolean(), server_default=sa.true(),
                                      nullable=False))

    op.create_table('xmpp_credential',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('keys', sa.String(length=200), nullable=False),
    sa.Column('set_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_xmpp_credential_account_id_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_xmpp_credential'))
    )
    op.create_table('xmpp_password_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_xmpp_password_link_account_id_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_xmpp_password_link')),
    sa.UniqueConstraint('digest', name=op.f('uq_xmpp_password_link_digest'))
    )
    with op.batch_alter_table('xmpp_password_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_xmpp_password_link_account_id'), ['account_id'], unique=False)

    op.create_table('xmpp_signal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enterprise_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('jid', sa.String(length=520), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'], name=op.f('fk_xmpp_signal_enterprise_id_enterprise'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_xmpp_signal'))
    )
    with op.batch_alter_table('xmpp_signal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_xmpp_signal_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_xmpp_signal_enterprise_id'), ['enterprise_id'], unique=False)


def downgrade():
    op.drop_table('xmpp_signal')
    op.drop_table('xmpp_password_link')
    op.drop_table('xmpp_credential')
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_column('enabled')
    with op.batch_alter_table('enterprise', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_enterprise_im_domain'), type_='unique')
        batch_op.drop_column('im_domain')
