"""What the removal check keeps: per case, when it is next due and whether it may fetch at all; per check,
the HTTP status, the final URL after redirects and the time taken. Never a byte of the body."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from node.db import db
from service.database import UTCDateTime


class Watch(db.Model):  # type: ignore[name-defined,misc]
    """The removal check's schedule for one case."""

    __tablename__ = "removal_watches"
    # The removal-check job reads the due watches of one kind through this index, oldest due first.
    __table_args__ = (Index("ix_removal_watches_due", "case_kind", "do_not_fetch", "next_check_at"),)

    case_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    do_not_fetch: Mapped[bool] = mapped_column(Boolean, default=False)
    """The analyst marked the address as one never to be fetched (the check is off)."""
    next_check_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """When the address is next checked; None while the case's status says it is never fetched."""
    last_outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)


class Check(db.Model):  # type: ignore[name-defined,misc]
    """One check: ``up`` (it answers 2xx or 3xx), ``gone`` (404 or 410), or ``error`` (anything else)."""

    __tablename__ = "removal_checks"
    __table_args__ = (Index("ix_removal_checks_case", "case_kind", "case_id", "checked_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_kind: Mapped[str] = mapped_column(String(16))
    case_id: Mapped[str] = mapped_column(String(36))
    checked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(16))
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    final_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    elapsed_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    """Where the hosting trace placed the host when the content answered (None behind a CDN, or unknown):
    a country other than the case's suggests the content moved."""
