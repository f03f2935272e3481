"""an index of the refused reports, newest first

Revision ID: f4a5b6c7d8e9
Revises: e3f4a5b6c7d8
Create Date: 2026-11-30 06:30:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f4a5b6c7d8e9"
down_revision = "e3f4a5b6c7d8"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("case_reports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_case_reports_refused",
            ["settled_at"],
            unique=False,
            sqlite_where=sa.text("refused_reason IS NOT NULL"),
            postgresql_where=sa.text("refused_reason IS NOT NULL"),
        )


def downgrade():
    with op.batch_alter_table("case_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_case_reports_refused")
