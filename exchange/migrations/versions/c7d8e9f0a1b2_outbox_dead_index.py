"""the dead letters read through a partial index of the outbox (only rows in state "dead")

The outbox keeps a row for every document ever sent (the token is erased, the row stays), and the list
of dead letters without a destination filter read all of it: 161 ms a page at a million rows on
PostgreSQL (bench/dashboard.py), growing with the network (issue 11). The index holds only dead rows, so delivery never
writes to it.

Revision ID: c7d8e9f0a1b2
Revises: b6c7d8e9f0a1
Create Date: 2026-12-02 07:50:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c7d8e9f0a1b2"
down_revision = "b6c7d8e9f0a1"
branch_labels = None
depends_on = None

DEAD = sa.text("state = 'dead'")


def upgrade():
    op.create_index("ix_outbox_dead", "outbox", ["id"], unique=False, sqlite_where=DEAD, postgresql_where=DEAD)


def downgrade():
    op.drop_index("ix_outbox_dead", table_name="outbox")
