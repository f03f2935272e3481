from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import db
from service.database import UTCDateTime

REQUEUED, CLOSED = "requeued", "closed"


class DeadLetterAction(db.Model):  # type: ignore[name-defined,misc]
    """What the secretariat did with a dead letter (an outbox row in the ``dead`` state): re-queued it after
    the cause was fixed, or closed it with a reason. A dead letter without one is open."""

    __tablename__ = "dead_letter_actions"

    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), primary_key=True)
    action: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)  # The latest settled, on the page.
    by: Mapped[str] = mapped_column(String(80))
    requeued_as: Mapped[int | None] = mapped_column(nullable=True)
    """The outbox row that carries the document again (a report may go to another member than before)."""
