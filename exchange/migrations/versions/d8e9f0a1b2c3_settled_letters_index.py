"""the latest settled dead letters read through an index of when they were settled

The dead-letters page lists the 20 latest settled letters (re-queued or closed). With no index to start
from, SQLite, not knowing how few there are, read the whole outbox and looked each row up among them:
39 ms at a million outbox rows, growing with the network (issue 11).

Revision ID: d8e9f0a1b2c3
Revises: c7d8e9f0a1b2
Create Date: 2026-12-02 08:20:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "d8e9f0a1b2c3"
down_revision = "c7d8e9f0a1b2"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_dead_letter_actions_at", "dead_letter_actions", ["at"], unique=False)


def downgrade():
    op.drop_index("ix_dead_letter_actions_at", table_name="dead_letter_actions")
