"""The exchange's case tables. They hold fingerprints and metadata, never a plaintext URL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import db
from federation.models import UTCDateTime


class Case(db.Model):  # type: ignore[name-defined,misc]
    """A piece of content under action; its id is the id of the report that opened it."""

    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    origin: Mapped[str] = mapped_column(String(64), index=True)
    destination: Mapped[str] = mapped_column(String(64), index=True)
    hosting_country: Mapped[str] = mapped_column(String(2), index=True)
    legal_status: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16))
    confirmed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    received_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(32), default="routed")
    status_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ntd_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    police_notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CaseReport(db.Model):  # type: ignore[name-defined,misc]
    """A member's report, linked to the case it opened or duplicated."""

    __tablename__ = "case_reports"

    report_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    member: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    duplicate: Mapped[bool] = mapped_column(default=False)
    matched_on: Mapped[str | None] = mapped_column(String(32), nullable=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Fingerprint(db.Model):  # type: ignore[name-defined,misc]
    """A fingerprint of a case: the canonical URL's SHA-256, or a content hash."""

    __tablename__ = "fingerprints"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)


class CaseStatus(db.Model):  # type: ignore[name-defined,misc]
    """A status update from the case's destination, kept signed so late duplicates can be sent it too."""

    __tablename__ = "case_statuses"
    __table_args__ = (Index("ix_case_statuses_case", "case_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    doc_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(32))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    token: Mapped[str] = mapped_column(Text)
