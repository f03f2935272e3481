from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ColumnElement, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from node.db import db
from service.database import UTCDateTime, spelled_out


class InboundCase(db.Model):  # type: ignore[name-defined,misc]
    """A location hosted in our country (or routed to us as the fallback), as other hotlines reported it.

    One case per location: every report of the same URL that reaches us joins it (``InboundReport``), so
    nobody here assesses the same location twice. Its id is the id of the first report of it.
    """

    __tablename__ = "inbound_cases"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    origin: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(Text)
    url_fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    hosting_country: Mapped[str] = mapped_column(String(2))
    legal_status: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16))
    content_hashes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    confirmed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    status: Mapped[str] = mapped_column(String(32), default="received")
    same_material: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    """Earlier cases elsewhere with the same content, as the exchange told us (a ``material`` notice)."""
    trace: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    """The last trace of the address's hosting (``node.hosting.services.Trace``): the notice page, its
    contact suggestions and the escalations read it instead of asking the resolver again."""
    traced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


FINISHED = ("removed", "not_illegal_here", "moved")
"""Statuses that end a received case's work here; every other status is open."""

# The received list is urgent first, then oldest first ("urgent" sorts after "normal", so descending):
# read in that order from an index, never sorted, whatever the number of cases. The open cases, which
# the analysts' links and counts ask for, have an index of their own that holds only them.
Index("ix_inbound_cases_queue", InboundCase.priority.desc(), InboundCase.received_at, InboundCase.id)
Index(
    "ix_inbound_cases_open",
    InboundCase.priority.desc(),
    InboundCase.received_at,
    InboundCase.id,
    sqlite_where=InboundCase.status.not_in(FINISHED),
    postgresql_where=InboundCase.status.not_in(FINISHED),
)


def is_open() -> ColumnElement[bool]:
    """The open received cases: the statuses spelled out (not bound), so that both databases see the
    partial index ``ix_inbound_cases_open`` holds every row asked for."""
    return InboundCase.status.not_in(spelled_out(FINISHED))


class InboundReport(db.Model):  # type: ignore[name-defined,misc]
    """One hotline's report of an inbound case: the first that opened it, and every later one of the same URL."""

    __tablename__ = "inbound_reports"

    origin: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("inbound_cases.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    hosting_country: Mapped[str] = mapped_column(String(2))
    legal_status: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16))
    content_hashes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    confirmed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class CaseEvent(db.Model):  # type: ignore[name-defined,misc]
    """A status update on a case, whoever's case it is (ours abroad, or one we handle)."""

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case", "case_id", "at"),)

    author: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(32))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Free text from the destination: ours when we wrote it, or sent to us alone as the case's origin."""
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    extra: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
