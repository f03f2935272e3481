"""A case is a location: every report of the same URL at this node is one case, with its reporters kept."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from node.db import db
from service.database import UTCDateTime

# Where a case stands at this hotline.
NEW = "new"  # Reported; nobody has assessed it yet.
REVIEW = "review"  # Assessed; a supervisor's second look is pending (four-eyes review).
ASSESSED = "assessed"  # Assessed (and approved); next: where it is hosted, then the routing decision.
FORWARDED = "forwarded"  # Hosted abroad: sent through the exchange to the hotline that covers it.
HOSTED_HERE = "hosted_here"  # Hosted in a country this hotline covers: notice and police here.
CLOSED = "closed"  # Nothing (more) to do here: not illegal, gone, or not a report.
STATES = (NEW, REVIEW, ASSESSED, FORWARDED, HOSTED_HERE, CLOSED)
OPEN_STATES = (NEW, REVIEW, ASSESSED)

# What a reporter sees for each state (node.intake.models.PUBLIC_STATUSES).
PUBLIC_STATUS = {
    NEW: "received",
    REVIEW: "received",
    ASSESSED: "assessed",
    FORWARDED: "action_taken",
    HOSTED_HERE: "assessed",
    CLOSED: "closed",
}


class Case(db.Model):  # type: ignore[name-defined,misc]
    """One location this hotline handles, and everything decided about it."""

    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_assigned", "assigned_to", "state"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    """As first reported; shown defanged, opened only deliberately."""
    canonical_url: Mapped[str] = mapped_column(Text)
    url_fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(16), default=NEW)
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    urgent_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    first_reported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_reported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    reporters: Mapped[int] = mapped_column(default=1)
    state_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    assigned_to: Mapped[str | None] = mapped_column(String(64), nullable=True)
    assigned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    # Triage: what the network said before anyone looked (node.cases.triage).
    triage: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    triaged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    known: Mapped[bool] = mapped_column(Boolean, default=False)
    """The network (or this hotline) already knows the location or its material: warn before opening."""

    # Assessment (node.cases.assessment), and the supervisor's review where four-eyes is on.
    assessment: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    legal_status: Mapped[str | None] = mapped_column(String(24), nullable=True, index=True)
    assessed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    assessed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    # Hosting: the trace's findings, and the country the case is routed by.
    trace: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    traced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    hosting_country: Mapped[str | None] = mapped_column(String(2), nullable=True, index=True)
    country_source: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """``trace`` (the trace's suggestion) or ``override`` (set by hand, with ``country_reason``)."""
    country_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    # The routing decision.
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    destination: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The member expected to handle it (from the directory); for a country nobody covers, the fallback."""
    fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    """No member covers the hosting country: the network's fallback handles it."""
    report_id: Mapped[str | None] = mapped_column(ForeignKey("reports.id"), nullable=True)
    closed_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    closed_note: Mapped[str | None] = mapped_column(Text, nullable=True)

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES


# The queues' order: urgent first ('urgent' sorts after 'normal', so descending), then oldest; a deep page
# walks one of these instead of sorting every case.
Index("ix_cases_queue", Case.state, Case.priority.desc(), Case.first_reported_at, Case.id)
Index("ix_cases_order", Case.priority.desc(), Case.first_reported_at, Case.id)


class CaseHash(db.Model):  # type: ignore[name-defined,misc]
    """A content hash the assessment of a case recorded: how this hotline finds its own cases of the same
    material (triage), by index rather than by reading every assessment."""

    __tablename__ = "case_content_hashes"

    alg: Mapped[str] = mapped_column(String(8), primary_key=True)
    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True, index=True)
