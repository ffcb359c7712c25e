"""job runs belong to the process that runs them (owner, heartbeat); one active run per
kind and target (was: per target)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

ACTIVE = sa.text("state IN ('queued', 'running')")


def upgrade():
    with op.batch_alter_table('job_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner', sa.String(length=255), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(), nullable=True))
        batch_op.drop_index('uq_job_run_active_target', sqlite_where=ACTIVE,
                            postgresql_where=ACTIVE)
        # The old index (per target) was stricter: no row breaks the new one.
        batch_op.create_index('uq_job_run_active_kind_target', ['kind', 'target'], unique=True,
                              sqlite_where=ACTIVE, postgresql_where=ACTIVE)


def downgrade():
    with op.batch_alter_table('job_run', schema=None) as batch_op:
        batch_op.drop_index('uq_job_run_active_kind_target', sqlite_where=ACTIVE,
                            postgresql_where=ACTIVE)
        batch_op.create_index('uq_job_run_active_target', ['target'], unique=True,
                              sqlite_where=ACTIVE, postgresql_where=ACTIVE)
        batch_op.drop_column('heartbeat_at')
        batch_op.drop_column('owner')
