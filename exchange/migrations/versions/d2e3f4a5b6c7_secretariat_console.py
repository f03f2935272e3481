"""the secretariat's console: member contacts and certificates, CRL fetches, routing overrides, dead letters

Revision ID: d2e3f4a5b6c7
Revises: c1d2e3f4a5b6
Create Date: 2026-11-30 05:40:00

"""

import sqlalchemy as sa
from alembic import op

import service.database

# revision identifiers, used by Alembic.
revision = "d2e3f4a5b6c7"
down_revision = "c1d2e3f4a5b6"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_email", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("status_reason", sa.Text(), nullable=True))
    op.create_table(
        "member_certificates",
        sa.Column("serial", sa.String(length=48), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("thumbprint", sa.String(length=64), nullable=False),
        sa.Column("not_before", service.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("not_after", service.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("issued_at", service.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.String(length=80), nullable=False),
        sa.Column("pem", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("supersede_at", service.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", service.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.String(length=32), nullable=True),
        sa.Column("revocation_note", sa.Text(), nullable=True),
        sa.Column("warned", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_member_certificates_member_id_members")),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_member_certificates")),
    )
    with op.batch_alter_table("member_certificates", schema=None) as batch_op:
        batch_op.create_index("ix_member_certificates_member", ["member_id", "state"], unique=False)
        batch_op.create_index(batch_op.f("ix_member_certificates_not_after"), ["not_after"], unique=False)
    op.create_table(
        "crl_fetches",
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("crl_number", sa.Integer(), nullable=False),
        sa.Column("fetched_at", service.database.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_crl_fetches")),
    )
    op.create_table(
        "route_overrides",
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("expires_at", service.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", service.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_route_overrides_member_id_members")),
        sa.PrimaryKeyConstraint("country", name=op.f("pk_route_overrides")),
    )
    op.create_table(
        "dead_letter_actions",
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", service.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=80), nullable=False),
        sa.Column("requeued_as", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"], name=op.f("fk_dead_letter_actions_outbox_id_outbox")),
        sa.PrimaryKeyConstraint("outbox_id", name=op.f("pk_dead_letter_actions")),
    )


def downgrade():
    op.drop_table("dead_letter_actions")
    op.drop_table("route_overrides")
    op.drop_table("crl_fetches")
    with op.batch_alter_table("member_certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_certificates_not_after"))
        batch_op.drop_index("ix_member_certificates_member")
    op.drop_table("member_certificates")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("status_reason")
        batch_op.drop_column("contact_email")
