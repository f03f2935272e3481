"""indexes for the network status figures

Revision ID: c1d2e3f4a5b6
Revises: 9b4f0e6d2a17
Create Date: 2026-11-30 05:25:00

"""

# revision identifiers, used by Alembic.
revision = "c1d2e3f4a5b6"
down_revision = "9b4f0e6d2a17"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
