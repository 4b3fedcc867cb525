"""pages.truncated: the stored record was cut to its size bound

Revision ID: hostile01
Revises: product01
Create Date: 2026-11-29 23:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "hostile01"
down_revision = "product01"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("pages") as batch_op:
        batch_op.add_column(sa.Column("truncated", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table("pages") as batch_op:
        batch_op.drop_column("truncated")
