"""Abuse contacts, notice templates and notices.

A notice is written in the transaction that decides it (``state`` pending) and sent by the worker, which
marks it sent with the SMTP Message-ID in the transaction that records the time: the same outbox
discipline as the network's documents.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from node.db import db
from service.database import UTCDateTime

ROLES = {
    "hosting": "Hosting provider",
    "registrar": "Registrar",
    "upstream": "Upstream network",
    "police": "Police",
}
PENDING, SENT, FAILED = "pending", "sent", "failed"
CANCELLED = "cancelled"  # Still waiting when its case was closed (removed, not illegal here, moved): never sent.


class AbuseContact(db.Model):  # type: ignore[name-defined,misc]
    """Where notices for a network, an autonomous system or a domain go."""

    __tablename__ = "abuse_contacts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="hosting")
    email: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(8), default="en")
    asns: Mapped[list[int]] = mapped_column(JSON, default=list)
    networks: Mapped[list[str]] = mapped_column(JSON, default=list)
    domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    """For a police contact: the country it covers."""
    renotice_hours: Mapped[int] = mapped_column(Integer, default=24)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class NoticeTemplate(db.Model):  # type: ignore[name-defined,misc]
    """A supervisor's wording of the notice in one language (the shipped wording where there is none)."""

    __tablename__ = "notice_templates"

    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(80))


class Notice(db.Model):  # type: ignore[name-defined,misc]
    """One notice to one contact about one location, from the decision to the SMTP server's acceptance."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_due", "state", "due_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_kind: Mapped[str] = mapped_column(String(16))
    """``received`` (a case another hotline sent here) or ``case`` (this hotline's own, hosted here)."""
    case_id: Mapped[str] = mapped_column(String(36), index=True)
    contact_id: Mapped[str] = mapped_column(ForeignKey("abuse_contacts.id"))
    recipient: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(8))
    url: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """What the notice says besides the URL: legal status, media type, hashes, first reported."""
    state: Mapped[str] = mapped_column(String(16), default=PENDING)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(80))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    followed_up: Mapped[bool] = mapped_column(Boolean, default=False)
    """The audit entry and the "notice sent" status were recorded (a separate commit after the send's own,
    so the window in which a crash can resend a notice is one small UPDATE wide)."""
