"""Reports as they arrive at this node, from the public reporting page and from partners."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from node.db import db
from service.database import UTCDateTime

# Where a report came from.
PUBLIC = "public"
PARTNER = "partner"
SOURCES = (PUBLIC, PARTNER)

# What the reporter may see with the reference (or a partner through the API): coarse, never the
# assessment, never who else reported it or where it was sent.
RECEIVED = "received"
ASSESSED = "assessed"
ACTION_TAKEN = "action_taken"
PUBLIC_CLOSED = "closed"
PUBLIC_STATUSES = (RECEIVED, ASSESSED, ACTION_TAKEN, PUBLIC_CLOSED)

# Where the reporter saw it.
SEEN_ON = ("website", "social_media", "chat", "email", "other")


class Submission(db.Model):  # type: ignore[name-defined,misc]
    """One report as it reached this node: a URL, and what its reporter chose to tell."""

    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_partner_received_at", "partner_id", "received_at"),
        Index("ix_submissions_partner_fingerprint", "partner_id", "url_fingerprint"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    """The location's case at this node (node.cases): every report of the same URL joins one case."""
    source: Mapped[str] = mapped_column(String(16))
    reference_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    """SHA-256 of the public reference: the reporter's key to the coarse status, never stored in clear."""
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"), nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """The partner's own identifier for the report, if it gave one."""
    url: Mapped[str] = mapped_column(Text)
    """As the reporter wrote it (trimmed, Unicode NFC); shown defanged, opened only deliberately."""
    canonical_url: Mapped[str] = mapped_column(Text)
    url_fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    """The location's fingerprint under the network's rules (docs/protocol.md section 12)."""
    seen_on: Mapped[str | None] = mapped_column(String(16), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    content_hashes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    detected_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    contact_name: Mapped[str | None] = mapped_column(String(120), nullable=True)
    contact_email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    contact_erase_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    """When the contact details are erased (the worker's ``forget-contacts`` job), as the page promised."""
    language: Mapped[str] = mapped_column(String(16), default="en")
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    """The item's place in its partner batch: reports received together keep the partner's order."""
    public_status: Mapped[str] = mapped_column(String(16), default=RECEIVED)
    """What the reporter sees: follows the case's state (node.cases.models.PUBLIC_STATUS)."""
    status_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class IdempotentRequest(db.Model):  # type: ignore[name-defined,misc]
    """A partner's request with an ``Idempotency-Key``: a retry gets the answer the first one got."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (UniqueConstraint("partner_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the method, path and body: the same key with another request is refused."""
    status: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
