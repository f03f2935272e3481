"""the reports sent read in order from an index, and the waiting ones counted from their own

The list of reports sent sorted every report on each view, and the home page grouped every report
ever sent by state to show two numbers (290 ms at a million reports on SQLite): both grew with the
store (issue 11). ``ix_reports_order`` serves the list newest first; the partial ``ix_reports_waiting``
holds only the reports awaiting a receipt or refused.

Revision ID: e7a4c9d2b5f8
Revises: d5e2b8c3a4f1
Create Date: 2026-12-02 08:50:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e7a4c9d2b5f8"
down_revision = "d5e2b8c3a4f1"
branch_labels = None
depends_on = None

WAITING = sa.text("state IN ('sent', 'refused')")


def upgrade():
    op.create_index("ix_reports_order", "reports", ["confirmed_at", "id"], unique=False)
    op.create_index(
        "ix_reports_waiting", "reports", ["state"], unique=False, sqlite_where=WAITING, postgresql_where=WAITING
    )


def downgrade():
    op.drop_index("ix_reports_waiting", table_name="reports")
    op.drop_index("ix_reports_order", table_name="reports")
