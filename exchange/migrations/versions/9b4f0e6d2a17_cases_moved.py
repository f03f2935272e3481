"""cases whose content moved

Revision ID: 9b4f0e6d2a17
Revises: 5a91ba144c2d
Create Date: 2026-11-30 05:20:00

"""

import sqlalchemy as sa
from alembic import op

import service.database

# revision identifiers, used by Alembic.
revision = "9b4f0e6d2a17"
down_revision = "5a91ba144c2d"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("moved_at", service.database.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("moved_at")
