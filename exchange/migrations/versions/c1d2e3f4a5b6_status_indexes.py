"""indexes for the network status figures

Revision ID: c1d2e3f4a5b6
Revises: 9b4f0e6d2a17
Create Date: 2026-11-30 05:25:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "c1d2e3f4a5b6"
down_revision = "9b4f0e6d2a17"
branch_labels = None
depends_on = None


def upgrade():
    # Cases by the month of their first report (the dashboard's period filter, the annual summary).
    op.create_index("ix_cases_confirmed_at", "cases", ["confirmed_at"], unique=False)
    # Duplicates avoided: verified duplicate reports, found without reading every report.
    op.create_index("ix_case_reports_state_duplicate", "case_reports", ["state", "duplicate"], unique=False)


def downgrade():
    op.drop_index("ix_case_reports_state_duplicate", table_name="case_reports")
    op.drop_index("ix_cases_confirmed_at", table_name="cases")
