"""the received list and its open cases read in order from two indexes

The list of received cases sorted every case on each view (urgent first, then the oldest), and the open
counts on the home page read every case: both grew with the store (issue 11). The queue index serves the
list in its order; the partial one holds only open cases, for the open list and the counts.

Revision ID: d5e2b8c3a4f1
Revises: c4a1e7f2b9d3
Create Date: 2026-12-02 08:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d5e2b8c3a4f1"
down_revision = "c4a1e7f2b9d3"
branch_labels = None
depends_on = None

OPEN = sa.text("status NOT IN ('removed', 'not_illegal_here', 'moved')")
COLUMNS: list[str | sa.TextClause] = [sa.text("priority DESC"), "received_at", "id"]


def upgrade():
    op.create_index("ix_inbound_cases_queue", "inbound_cases", COLUMNS, unique=False)
    op.create_index(
        "ix_inbound_cases_open", "inbound_cases", COLUMNS, unique=False, sqlite_where=OPEN, postgresql_where=OPEN
    )


def downgrade():
    op.drop_index("ix_inbound_cases_open", table_name="inbound_cases")
    op.drop_index("ix_inbound_cases_queue", table_name="inbound_cases")
