"""reports sent again after their content moved; where a removal check traced the host

Revision ID: 5d2e8a1c7b30
Revises: 2c01e43245a5
Create Date: 2026-11-30 05:20:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5d2e8a1c7b30"
down_revision = "2c01e43245a5"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resent_as", sa.String(length=36), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_reports_resent_as"), ["resent_as"])
    with op.batch_alter_table("removal_checks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("country", sa.String(length=2), nullable=True))


def downgrade():
    with op.batch_alter_table("removal_checks", schema=None) as batch_op:
        batch_op.drop_column("country")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_reports_resent_as"), type_="unique")
        batch_op.drop_column("resent_as")
