"""A referral as it was handed over: the signed document itself is kept, so the hotline can show exactly
what the police received and when."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from node.db import db
from service.database import UTCDateTime


class Referral(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "police_referrals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    """The signed document's ``jti``."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    created_by: Mapped[str] = mapped_column(String(80))
    police: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    case_ids: Mapped[list[str]] = mapped_column(JSON)
    token: Mapped[str] = mapped_column(Text)
    """The JWS handed over (``typ`` hotline.police-referral.v1)."""
