"""sites.scheme_guessed: the URL was typed without a scheme (https assumed, http fallback)

Revision ID: lead02
Revises: hostile01
Create Date: 2026-11-29 23:50:00

"""
import sqlalchemy as sa
from alembic import op

revision = "lead02"
down_revision = "hostile01"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sites") as batch_op:
        batch_op.add_column(sa.Column("scheme_guessed", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table("sites") as batch_op:
        batch_op.drop_column("scheme_guessed")
