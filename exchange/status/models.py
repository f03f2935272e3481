"""The network status summary tables, kept by the ``status-rollup`` job (exchange.status.rollup).

Every figure of the dashboard is a sum over **cells**: the cases first reported in one month, grouped by
origin, destination, hosting country and legal status. A page may filter on any of those and break its
figures down by any of them, so the cells are kept at four **levels**, each holding the same figures
grouped by fewer keys (a key a level does not group by is stored as ``''``):

    level 0  month, legal status
    level 1  month, legal status, origin
    level 2  month, legal status, hosting country, destination
    level 3  month, legal status, origin, hosting country, destination

A query uses the coarsest level that has every key it filters on or groups by, so it sums at most a few
thousand rows whatever it asks (measured at 1 million cases: level 3 has about 100,000 cells, levels 0-2
a few thousand together). Destination and hosting country travel together because one decides the other
(a country's cases go to its member), which keeps level 2 small.

The durations behind the medians are **histograms in whole hours** (``status_histograms``): one row per
cell and kind, its counts packed as a JSON object ``{"<hours>": <cases>}``. Unpacked, they would be one
row per cell and hour (about 700,000 rows at 1 million cases: a sum over them alone costs more than a
page may); packed, a median reads one row per cell. ``status_recent`` is the rollup's copy of the cases
first reported in the 3 days before it ran, which the pages need for the 3-day shares' denominators.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import db
from service.database import UTCDateTime

LEVEL_KEYS: dict[int, tuple[str, ...]] = {
    0: (),
    1: ("origin",),
    2: ("hosting_country", "destination"),
    3: ("origin", "hosting_country", "destination"),
}
"""The keys each level groups by, besides the month and the legal status."""


class StatusCell(db.Model):  # type: ignore[name-defined,misc]
    """The counts of one cell: the cases first reported in ``month`` with these keys (see the module)."""

    __tablename__ = "status_cells"

    level: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    """``YYYY-MM`` of the cases' first report (``cases.confirmed_at``, UTC)."""
    legal_status: Mapped[str] = mapped_column(String(32), primary_key=True)
    origin: Mapped[str] = mapped_column(String(64), primary_key=True)
    hosting_country: Mapped[str] = mapped_column(String(2), primary_key=True)
    destination: Mapped[str] = mapped_column(String(64), primary_key=True)
    cases: Mapped[int] = mapped_column(Integer)
    """Cases not refused (every other count but ``rejected`` is of these)."""
    removed: Mapped[int] = mapped_column(Integer)
    removed_3d: Mapped[int] = mapped_column(Integer)
    """Removed at most 72 hours after the first report."""
    police_3d: Mapped[int] = mapped_column(Integer)
    """Referred to police at most 72 hours after the first report."""
    noticed: Mapped[int] = mapped_column(Integer)
    """Removed after a notice (both times known, removal not before the notice)."""
    duplicates: Mapped[int] = mapped_column(Integer)
    """Other members' reports of these cases that the destination confirmed (verified duplicates)."""
    provisional: Mapped[int] = mapped_column(Integer)
    confirmed: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    """Refused reports: never cases, counted only for the API's ``by_state``."""

    __table_args__ = (
        # The pages filter level 3 by one of these keys (and the month): each reads one member's or
        # country's cells instead of all of them.
        Index("ix_status_cells_origin", "level", "origin", "month"),
        Index("ix_status_cells_destination", "level", "destination", "month"),
        Index("ix_status_cells_country", "level", "hosting_country", "month"),
    )


class StatusHistogram(db.Model):  # type: ignore[name-defined,misc]
    """One cell's distribution of one kind: ``removal`` (whole hours from first report to removal),
    ``notice`` (whole hours from notice to removal) or ``status`` (cases by their latest status)."""

    __tablename__ = "status_histograms"

    level: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    legal_status: Mapped[str] = mapped_column(String(32), primary_key=True)
    origin: Mapped[str] = mapped_column(String(64), primary_key=True)
    hosting_country: Mapped[str] = mapped_column(String(2), primary_key=True)
    destination: Mapped[str] = mapped_column(String(64), primary_key=True)
    counts: Mapped[str] = mapped_column(Text)
    """A JSON object: bucket (hours, or a status) -> number of cases."""

    __table_args__ = (
        Index("ix_status_histograms_origin", "level", "kind", "origin", "month"),
        Index("ix_status_histograms_destination", "level", "kind", "destination", "month"),
        Index("ix_status_histograms_country", "level", "kind", "hosting_country", "month"),
    )


class StatusRecent(db.Model):  # type: ignore[name-defined,misc]
    """A case (not refused) first reported in the 3 days before the last rollup, as the rollup saw it."""

    __tablename__ = "status_recent"

    case_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    legal_status: Mapped[str] = mapped_column(String(32))
    origin: Mapped[str] = mapped_column(String(64))
    hosting_country: Mapped[str] = mapped_column(String(2))
    destination: Mapped[str] = mapped_column(String(64))
    confirmed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    removed_3d: Mapped[bool] = mapped_column(Boolean)
    police_3d: Mapped[bool] = mapped_column(Boolean)
