"""The exchange's tables for reliable messaging (shapes shared with the node, see federation.models)."""

from __future__ import annotations

from exchange.db import db
from federation.models import (
    InboundDocumentMixin,
    MailboxBatchMixin,
    OutboxMixin,
    PeerMixin,
    SeenTransactionMixin,
    ServiceStateMixin,
)


class Outbox(OutboxMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "outbox"


class Peer(PeerMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "peers"


class SeenTransaction(SeenTransactionMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "seen_transactions"


class InboundDocument(InboundDocumentMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "inbound_documents"


class MailboxBatch(MailboxBatchMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "mailbox_batches"


class ServiceState(ServiceStateMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "service_state"


MODELS = {
    "outbox": Outbox,
    "peer": Peer,
    "seen": SeenTransaction,
    "inbound": InboundDocument,
    "mailbox_batch": MailboxBatch,
    "state": ServiceState,
}
