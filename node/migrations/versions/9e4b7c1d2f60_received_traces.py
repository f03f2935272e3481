"""a received case keeps its last hosting trace

Revision ID: 9e4b7c1d2f60
Revises: 5d2e8a1c7b30
Create Date: 2026-12-02 02:20:00

"""

import sqlalchemy as sa
from alembic import op

import service.database

# revision identifiers, used by Alembic.
revision = "9e4b7c1d2f60"
down_revision = "5d2e8a1c7b30"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("inbound_cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trace", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("traced_at", service.database.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("inbound_cases", schema=None) as batch_op:
        batch_op.drop_column("traced_at")
        batch_op.drop_column("trace")
