"""Routing overrides: the secretariat sends a country's reports to a member other than the one covering it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import db
from service.database import UTCDateTime


class RouteOverride(db.Model):  # type: ignore[name-defined,misc]
    """Reports of content hosted in ``country`` go to ``member_id`` until ``expires_at`` (or until removed)."""

    __tablename__ = "route_overrides"

    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    reason: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(80))
