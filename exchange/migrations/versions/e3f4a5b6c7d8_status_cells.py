"""network status summary cells, histograms and the recent cases (kept by the status-rollup job)

Revision ID: e3f4a5b6c7d8
Revises: d2e3f4a5b6c7
Create Date: 2026-11-30 06:30:00

"""

import sqlalchemy as sa
from alembic import op

import service.database

# revision identifiers, used by Alembic.
revision = "e3f4a5b6c7d8"
down_revision = "d2e3f4a5b6c7"
branch_labels = None
depends_on = None

KEY = ("level", "month", "legal_status", "origin", "hosting_country", "destination")


def _key_columns():
    return [
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("legal_status", sa.String(length=32), nullable=False),
        sa.Column("origin", sa.String(length=64), nullable=False),
        sa.Column("hosting_country", sa.String(length=2), nullable=False),
        sa.Column("destination", sa.String(length=64), nullable=False),
    ]


def upgrade():
    # The cells are empty after this: the worker's status-rollup job fills them on its first run.
    counts = ("cases", "removed", "removed_3d", "police_3d", "noticed", "duplicates", "provisional", "confirmed")
    op.create_table(
        "status_cells",
        *_key_columns(),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in (*counts, "rejected")),
        sa.PrimaryKeyConstraint(*KEY, name=op.f("pk_status_cells")),
    )
    with op.batch_alter_table("status_cells", schema=None) as batch_op:
        batch_op.create_index("ix_status_cells_country", ["level", "hosting_country", "month"], unique=False)
        batch_op.create_index("ix_status_cells_destination", ["level", "destination", "month"], unique=False)
        batch_op.create_index("ix_status_cells_origin", ["level", "origin", "month"], unique=False)
    op.create_table(
        "status_histograms",
        *_key_columns(),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(
            "level",
            "kind",
            "month",
            "legal_status",
            "origin",
            "hosting_country",
            "destination",
            name=op.f("pk_status_histograms"),
        ),
    )
    with op.batch_alter_table("status_histograms", schema=None) as batch_op:
        batch_op.create_index(
            "ix_status_histograms_country", ["level", "kind", "hosting_country", "month"], unique=False
        )
        batch_op.create_index(
            "ix_status_histograms_destination", ["level", "kind", "destination", "month"], unique=False
        )
        batch_op.create_index("ix_status_histograms_origin", ["level", "kind", "origin", "month"], unique=False)
    op.create_table(
        "status_recent",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("legal_status", sa.String(length=32), nullable=False),
        sa.Column("origin", sa.String(length=64), nullable=False),
        sa.Column("hosting_country", sa.String(length=2), nullable=False),
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("confirmed_at", service.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("removed_3d", sa.Boolean(), nullable=False),
        sa.Column("police_3d", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_status_recent")),
    )
    with op.batch_alter_table("status_recent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_status_recent_confirmed_at"), ["confirmed_at"], unique=False)


def downgrade():
    with op.batch_alter_table("status_recent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_status_recent_confirmed_at"))
    op.drop_table("status_recent")
    with op.batch_alter_table("status_histograms", schema=None) as batch_op:
        batch_op.drop_index("ix_status_histograms_origin")
        batch_op.drop_index("ix_status_histograms_destination")
        batch_op.drop_index("ix_status_histograms_country")
    op.drop_table("status_histograms")
    with op.batch_alter_table("status_cells", schema=None) as batch_op:
        batch_op.drop_index("ix_status_cells_origin")
        batch_op.drop_index("ix_status_cells_destination")
        batch_op.drop_index("ix_status_cells_country")
    op.drop_table("status_cells")
