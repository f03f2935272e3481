"""drop the index of case_reports on case_id alone (ix_case_reports_case_state starts with case_id)

Every report inserted one more entry into an index on a random key, for no query that the composite
index does not already serve (issue 11: ingest cost as the store grows).

Revision ID: a5b6c7d8e9f0
Revises: f4a5b6c7d8e9
Create Date: 2026-11-30 08:55:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "a5b6c7d8e9f0"
down_revision = "f4a5b6c7d8e9"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_case_reports_case_id", table_name="case_reports")


def downgrade():
    op.create_index("ix_case_reports_case_id", "case_reports", ["case_id"], unique=False)
