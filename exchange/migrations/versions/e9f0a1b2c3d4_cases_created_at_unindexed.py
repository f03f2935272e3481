"""drop the index of cases on created_at: no query reads cases by when the exchange stored them

Every new case wrote one more index page for nothing: a single-report transaction commits one page per
table and index it touches (issue 11, the budget of a single-report transaction in docs/performance.md).
The dashboard and the annual summary read cases by ``confirmed_at`` (ix_cases_confirmed_at).

Revision ID: e9f0a1b2c3d4
Revises: d8e9f0a1b2c3
Create Date: 2026-12-02 10:50:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "e9f0a1b2c3d4"
down_revision = "d8e9f0a1b2c3"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_cases_created_at", table_name="cases")


def downgrade():
    op.create_index("ix_cases_created_at", "cases", ["created_at"], unique=False)
