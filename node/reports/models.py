from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ColumnElement, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from node.db import db
from service.database import UTCDateTime, spelled_out

# What the network has said of a report sent from here.
SENT = "sent"  # Queued for, or accepted by, the exchange; no hotline has confirmed it yet.
RECEIVED = "received"  # The destination's signed receipt came back.
DUPLICATE = "duplicate"  # It is a report of a location that was already a case; we follow that case.
REFUSED = "refused"  # The exchange refused it, or told us no hotline accepted it (a signed refusal).


class Report(db.Model):  # type: ignore[name-defined,misc]
    """A report this hotline confirmed and forwarded abroad."""

    __tablename__ = "reports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    canonical_url: Mapped[str] = mapped_column(Text)
    url_fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    hosting_country: Mapped[str] = mapped_column(String(2))
    legal_status: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16))
    content_hashes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    confirmed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16), default=SENT)
    case_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    destination: Mapped[str | None] = mapped_column(String(64), nullable=True)
    received_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    first_reported_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """When the case this report belongs to was first reported (a duplicate's case may be older)."""
    refused_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    refused_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resent_as: Mapped[str | None] = mapped_column(String(36), nullable=True, unique=True)
    """The id of this report as last sent again, after its case's content moved (a ``reroute`` notice)."""
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    """The operator's ``Idempotency-Key``: a retried submission returns this report, not a second one."""


WAITING = (SENT, REFUSED)
"""The states the home page counts: reports still waiting for a receipt, and refused ones to resubmit."""

# The list of reports sent, newest first, is read in that order from an index, never sorted; the waiting
# and refused reports, a few among every report ever sent, have an index of their own for the counts.
Index("ix_reports_order", Report.confirmed_at, Report.id)
Index(
    "ix_reports_waiting",
    Report.state,
    sqlite_where=Report.state.in_(WAITING),
    postgresql_where=Report.state.in_(WAITING),
)


def is_waiting() -> ColumnElement[bool]:
    """Reports in the :data:`WAITING` states, spelled out (not bound) so both databases see the partial
    index ``ix_reports_waiting`` holds every row asked for."""
    return Report.state.in_(spelled_out(WAITING))
