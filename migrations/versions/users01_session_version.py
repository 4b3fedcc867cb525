"""users.session_version: revocable sessions and remember cookies

Revision ID: users01
Revises: lead01
"""
import sqlalchemy as sa
from alembic import op

revision = "users01"
down_revision = "lead01"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("session_version", sa.Integer(), nullable=False,
                                      server_default="0"))


def downgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("session_version")
