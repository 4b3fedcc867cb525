"""sites: a name the user gave (display_name) and the batch's own site (is_own)

Revision ID: product01
Revises: monitor01_watchlists
"""
import sqlalchemy as sa
from alembic import op

revision = "product01"
down_revision = "monitor01_watchlists"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("display_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("is_own", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("is_own")
        batch_op.drop_column("display_name")
