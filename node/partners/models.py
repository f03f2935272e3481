"""A partner is an OAuth2 client of the node's public API; its access tokens are kept hashed."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from node.db import db
from service.database import UTCDateTime

ACTIVE = "active"
SUSPENDED = "suspended"

SCOPES = {
    "reports:write": "Submit reports",
    "reports:read": "Read the status of its own reports",
}
"""Every scope a partner can be given, with what it allows."""


class Partner(db.Model):  # type: ignore[name-defined,misc]
    """A platform or trusted flagger registered by a supervisor."""

    __tablename__ = "partners"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the client secret (256 random bits, shown once; a slow hash adds nothing at that entropy)."""
    name: Mapped[str] = mapped_column(String(120))
    contact: Mapped[str] = mapped_column(String(254))
    scopes: Mapped[str] = mapped_column(String(200))
    """Space-separated, as OAuth2 writes scopes."""
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(64))
    secret_set_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    suspended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    @property
    def scope_list(self) -> list[str]:
        return [scope for scope in self.scopes.split() if scope in SCOPES]

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


class PartnerToken(db.Model):  # type: ignore[name-defined,misc]
    """An access token issued to a partner: only its SHA-256 is kept."""

    __tablename__ = "partner_tokens"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
