"""drop the index of cases on url_fingerprint (the locations table's primary key answers every lookup)

No query reads cases by fingerprint: a case is found by its location (``locations``), so every report
inserted one more entry into an index on a random key for nothing (issue 11: ingest cost as the store
grows).

Revision ID: b6c7d8e9f0a1
Revises: a5b6c7d8e9f0
Create Date: 2026-11-30 18:20:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "b6c7d8e9f0a1"
down_revision = "a5b6c7d8e9f0"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_cases_url_fingerprint", table_name="cases")


def downgrade():
    op.create_index("ix_cases_url_fingerprint", "cases", ["url_fingerprint"], unique=False)
