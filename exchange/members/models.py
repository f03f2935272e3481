"""The member directory and the certificates the network CA issued to each member."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import db
from service.database import UTCDateTime

# A member's status: it exchanges reports; it is paused (its queued messages wait, its countries go to the
# fallback or an override); its certificates were revoked and it left the network (onboard it again).
ACTIVE, SUSPENDED, REVOKED = "active", "suspended", "revoked"

# A certificate's state: in use; replaced by a newer one and revoked as ``superseded`` once the overlap
# ended; revoked for another reason (compromise, the member left).
CURRENT, SUPERSEDED, CERT_REVOKED = "current", "superseded", "revoked"


class Member(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "members"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    countries: Mapped[list[str]] = mapped_column(JSON, default=list)
    endpoint: Mapped[str | None] = mapped_column(String(500), nullable=True)
    """Where the exchange pushes transactions; None for a member that pulls from its mailbox."""
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    is_fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    contact_email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    """Who hears about the member's certificates (expiry warnings) and its suspension."""
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class MemberCertificate(db.Model):  # type: ignore[name-defined,misc]
    """A certificate the network CA issued to a member (through the console or the command line)."""

    __tablename__ = "member_certificates"
    __table_args__ = (Index("ix_member_certificates_member", "member_id", "state"),)

    serial: Mapped[str] = mapped_column(String(48), primary_key=True)
    """Decimal, as in the CRL."""
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    thumbprint: Mapped[str] = mapped_column(String(64))
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    issued_by: Mapped[str] = mapped_column(String(80))
    pem: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=CURRENT)
    supersede_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """End of the rotation overlap: the worker revokes it as ``superseded`` then."""
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    revocation_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    warned: Mapped[list[int]] = mapped_column(JSON, default=list)
    """The expiry warnings mailed to the member's contact (days ahead: 30, 7)."""


class CrlFetch(db.Model):  # type: ignore[name-defined,misc]
    """Which CRL a member last fetched from the exchange (``GET /v1/crl``), and when."""

    __tablename__ = "crl_fetches"

    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    crl_number: Mapped[int] = mapped_column(Integer)
    fetched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
