"""every received case has a removal watch; the due ones are read through one index

Revision ID: b3f0d6a91c27
Revises: 9e4b7c1d2f60
Create Date: 2026-12-02 07:30:00

"""

import sqlalchemy as sa
from alembic import op

import service.database

# revision identifiers, used by Alembic.
revision = "b3f0d6a91c27"
down_revision = "9e4b7c1d2f60"
branch_labels = None
depends_on = None

NEVER_CHECKED = ("not_illegal_here", "moved")
watches = sa.table(
    "removal_watches",
    sa.column("case_kind", sa.String),
    sa.column("case_id", sa.String),
    sa.column("do_not_fetch", sa.Boolean),
    sa.column("next_check_at", service.database.UTCDateTime(timezone=True)),
)
cases = sa.table(
    "inbound_cases",
    sa.column("id", sa.String),
    sa.column("status", sa.String),
    sa.column("received_at", service.database.UTCDateTime(timezone=True)),
)


def upgrade():
    with op.batch_alter_table("removal_watches", schema=None) as batch_op:
        batch_op.drop_index("ix_removal_watches_due")
        batch_op.alter_column("next_check_at", existing_type=service.database.UTCDateTime(timezone=True), nullable=True)
        batch_op.create_index("ix_removal_watches_due", ["case_kind", "do_not_fetch", "next_check_at"], unique=False)
    # A watch for every received case without one, due when it was received (never-checked cases: none).
    unwatched = ~sa.exists().where(watches.c.case_kind == "received", watches.c.case_id == cases.c.id)
    due = sa.case((cases.c.status.in_(NEVER_CHECKED), sa.null()), else_=cases.c.received_at)
    op.execute(
        watches.insert().from_select(
            ["case_kind", "case_id", "do_not_fetch", "next_check_at"],
            sa.select(sa.literal("received"), cases.c.id, sa.false(), due).where(unwatched),
        )
    )
    never = sa.select(cases.c.id).where(cases.c.status.in_(NEVER_CHECKED))
    op.execute(
        watches.update()
        .where(watches.c.case_kind == "received", watches.c.case_id.in_(never))
        .values(next_check_at=None)
    )


def downgrade():
    # Watches without a next check were never-checked cases: due again, as the old job filtered them out.
    op.execute(watches.update().where(watches.c.next_check_at.is_(None)).values(next_check_at=sa.func.now()))
    with op.batch_alter_table("removal_watches", schema=None) as batch_op:
        batch_op.drop_index("ix_removal_watches_due")
        batch_op.alter_column(
            "next_check_at", existing_type=service.database.UTCDateTime(timezone=True), nullable=False
        )
        batch_op.create_index("ix_removal_watches_due", ["do_not_fetch", "next_check_at"], unique=False)
