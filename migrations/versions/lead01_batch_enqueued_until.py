"""batches.enqueued_until: the window in which a start message is in flight

Revision ID: lead01
Revises: d20a938b3ca1
Create Date: 2026-11-29 23:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "lead01"
down_revision = "d20a938b3ca1"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("batches") as batch_op:
        batch_op.add_column(sa.Column("enqueued_until", sa.DateTime(timezone=True),
                                      nullable=True))


def downgrade():
    with op.batch_alter_table("batches") as batch_op:
        batch_op.drop_column("enqueued_until")
