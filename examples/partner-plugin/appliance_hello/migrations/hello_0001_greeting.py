"""hello: greeting table

The first revision of the hello branch: no down_revision, branch label "hello".
Written with `appliance db revision --plugin hello -m "greeting table"`.

Revision ID: hello_0001
Revises:
Create Date: 2026-11-22 12:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = "hello_0001"
down_revision = None
branch_labels = ("hello",)
depends_on = None


def upgrade():
    op.create_table(
        "hello_greeting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=80), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hello_greeting")),
    )


def downgrade():
    op.drop_table("hello_greeting")
