"""The exchange's case tables. They hold fingerprints and metadata, never a plaintext URL.

A **case** is one location: one canonical URL, known here by its fingerprint. ``locations`` is the index
that dedup consults (fingerprint → the live case at that location); a rejected case leaves it, so its
fingerprint stops matching. ``case_hashes`` holds the content hashes of confirmed reports, which link
cases as **same material** (``material_links``) but never join them. ``case_reports`` holds every
member's report of a case: the one that opened it and each duplicate, with the duplicate's state while
the case's destination has not yet confirmed that the reporter holds the URL.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import db
from service.database import UTCDateTime

# Case states: the destination has not confirmed yet; it confirmed (its signed receipt came back);
# it refused the report, or the report could not be delivered.
PROVISIONAL, CONFIRMED, REJECTED = "provisional", "confirmed", "rejected"

# States of a member's report of a case (case_reports.state).
OPENED = "opened"  # It opened the case (the case's state says the rest).
HELD = "held"  # A duplicate of a provisional case: kept, with its token, until the case is decided.
PENDING = "pending"  # A duplicate forwarded to the case's destination, which has not confirmed it yet.
VERIFIED = "verified"  # A duplicate the destination confirmed: its reporter follows the case.
REFUSED = "refused"  # A duplicate the destination refused (or that could not be delivered).
REROUTED = "rerouted"  # A duplicate of a case that was rejected: it went on as a case of its own.
MOVED = "moved"  # The report that opened a case whose content moved: its origin sent it again to the new country.


class Case(db.Model):  # type: ignore[name-defined,misc]
    """One location under action; its id is the id of the report that opened it."""

    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    url_fingerprint: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(64), index=True)
    destination: Mapped[str] = mapped_column(String(64), index=True)
    hosting_country: Mapped[str] = mapped_column(String(2), index=True)
    legal_status: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=PROVISIONAL, index=True)
    confirmed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    """When the origin's analyst confirmed the report (its routing header)."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    """When the exchange stored it. Not indexed: nothing reads cases by it (the pages use confirmed_at)."""
    received_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """When the destination stored it (its signed receipt): the moment the case stopped being provisional."""
    rejected_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    rejected_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ntd_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    police_notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    moved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """When its content last moved to another country (the case was re-routed; ``confirmed_at`` stays)."""

    # The network status figures select cases by the month of their first report (exchange.status).
    __table_args__ = (Index("ix_cases_confirmed_at", "confirmed_at"),)


class Location(db.Model):  # type: ignore[name-defined,misc]
    """The live case at a location (URL fingerprint). A rejected case's row is deleted: it stops matching."""

    __tablename__ = "locations"

    url_fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)


class CaseReport(db.Model):  # type: ignore[name-defined,misc]
    """A member's report, linked to the case it opened or duplicated."""

    __tablename__ = "case_reports"

    report_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    member: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))  # Indexed by ix_case_reports_case_state.
    duplicate: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(16), default=OPENED)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    hosting_country: Mapped[str] = mapped_column(String(2))
    priority: Mapped[str] = mapped_column(String(16))
    hashes: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    """Content hashes this report brings, as [alg, value] pairs: attached to the case once confirmed."""
    token: Mapped[str | None] = mapped_column(Text, nullable=True)
    """A held duplicate's signed report, until its case is decided (then erased)."""
    settled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    refused_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        Index("ix_case_reports_case_state", "case_id", "state"),
        # Duplicates avoided (exchange.status): the verified duplicates, without reading every report.
        Index("ix_case_reports_state_duplicate", "state", "duplicate"),
        # Refusals (exchange.status, the dead-letters page): the refused reports only, newest first.
        Index(
            "ix_case_reports_refused",
            "settled_at",
            sqlite_where=text("refused_reason IS NOT NULL"),
            postgresql_where=text("refused_reason IS NOT NULL"),
        ),
    )


class CaseHash(db.Model):  # type: ignore[name-defined,misc]
    """A content hash of a confirmed case: same material wherever it is hosted."""

    __tablename__ = "case_hashes"

    alg: Mapped[str] = mapped_column(String(8), primary_key=True)
    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)


class MaterialLink(db.Model):  # type: ignore[name-defined,misc]
    """Two locations of the same material: a newer case and an earlier confirmed one that shares a hash."""

    __tablename__ = "material_links"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    linked_case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True, index=True)
    matched_on: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class CaseStatus(db.Model):  # type: ignore[name-defined,misc]
    """A status update from the case's destination, kept signed so late duplicates can be sent it too.

    Status documents carry no free text (notes go to the origin alone, and are not kept here).
    """

    __tablename__ = "case_statuses"
    __table_args__ = (Index("ix_case_statuses_case", "case_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    doc_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(32))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    token: Mapped[str] = mapped_column(Text)
