"""Table shapes both services need for reliable messaging, as mixins each service maps onto its own tables.

Each service owns its database and its ``db`` object, so these are declarative mixins: the exchange and
the node each declare ``class Outbox(OutboxMixin, db.Model)`` and hand the concrete classes to the
services in :mod:`federation.inbox` and :mod:`federation.delivery`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from service.database import UTCDateTime


class SeenTransactionMixin:
    """Transactions accepted from each peer, kept for the replay window."""

    sender: Mapped[str] = mapped_column(String(64), primary_key=True)
    jti: Mapped[str] = mapped_column(String(36), primary_key=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class InboundDocumentMixin:
    """Every document applied, by author and id, with a digest of its exact bytes.

    A document seen again with the same digest is a duplicate and gets the stored outcome; the same id
    with a different digest is a conflict and is refused. Only the digest is kept, never the document.
    """

    author: Mapped[str] = mapped_column(String(64), primary_key=True)
    jti: Mapped[str] = mapped_column(String(36), primary_key=True)
    typ: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class OutboxMixin:
    """One document waiting for (or done with) delivery to one destination.

    States: ``pending`` (waiting or retrying), ``delivered`` (the destination's signed receipt said
    accepted or duplicate), ``dead`` (refused by the destination, or out of attempts: needs a person).
    The signed token is erased once delivered: the outbox is not an archive of other members' reports.
    """

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    destination: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(64))
    """Who signed the document: this service, or (at the exchange) the member whose document it relays."""
    doc_id: Mapped[str] = mapped_column(String(36))
    typ: Mapped[str] = mapped_column(String(64))
    token: Mapped[str | None] = mapped_column(Text, nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index, ...]:  # noqa: N805 - SQLAlchemy passes the class.
        name = cls.__tablename__  # type: ignore[attr-defined]
        dead = text("state = 'dead'")
        return (
            Index(f"ix_{name}_queue", "destination", "state", "priority", "id"),
            # The dead letters alone, newest first: the list of every destination's dead letters would
            # otherwise read the whole outbox, which keeps a row for every document ever sent. Only the
            # rows in that state are in the index, so delivering costs it nothing.
            Index(f"ix_{name}_dead", "id", sqlite_where=dead, postgresql_where=dead),
        )


class PeerMixin:
    """Delivery state of one destination: backoff, and what the secretariat watches."""

    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_contact_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    certificate_not_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class MailboxBatchMixin:
    """A transaction a pull member collected from the exchange's mailbox, and the outbox rows it carried.

    The member's signed receipt names the transaction; its results settle these rows by position, in
    whichever exchange process the receipt reaches. Unacknowledged records are pruned after a while (the
    rows stay pending and are collected again).
    """

    transaction_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    destination: Mapped[str] = mapped_column(String(64))
    row_ids: Mapped[list[int]] = mapped_column(JSON)
    collected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class ServiceStateMixin:
    """Small named values a service keeps across restarts (the highest CRL number it accepted, ...)."""

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
