"""The node's tables for reliable messaging (shapes shared with the exchange, see federation.models)."""

from __future__ import annotations

from federation.models import InboundDocumentMixin, OutboxMixin, PeerMixin, SeenTransactionMixin, ServiceStateMixin
from node.db import db


class Outbox(OutboxMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "outbox"


class Peer(PeerMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "peers"


class SeenTransaction(SeenTransactionMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "seen_transactions"


class InboundDocument(InboundDocumentMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "inbound_documents"


class ServiceState(ServiceStateMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "service_state"


MODELS = {"outbox": Outbox, "peer": Peer, "seen": SeenTransaction, "inbound": InboundDocument, "state": ServiceState}
