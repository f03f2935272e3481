"""The per-process federation machinery of a service: trust store, signer, transport, delivery.

Each service's factory builds one :class:`Runtime` and stores it in ``app.extensions["hotline"]``.
Services and views reach their collaborators through it; tests build the app with overrides and use
the same objects.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event

from federation.delivery import (
    OUTBOX_INFO_KEY,
    BackoffBoard,
    DeadLetterHandler,
    Deliverer,
    DeliverySettings,
    DeliveryWorker,
    Outbox,
)
from federation.inbox import Handler, Inbox
from federation.mailbox import MailboxSignal
from federation.signing import Signer
from federation.state import DatabaseCRLHighWater
from federation.transport import HTTPTransport
from federation.trust import TrustStore
from service.worker import Wakeup


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Runtime:
    def __init__(
        self,
        app: Flask,
        db: SQLAlchemy,
        *,
        models: Mapping[str, type[Any]],
        handlers: Callable[[Runtime], Mapping[str, Handler]],
        endpoint_for: Callable[[str], str | None],
        peer_role: str,
        worker: bool = False,
        dead_letters: Callable[[Runtime], DeadLetterHandler] | None = None,
        envelope: Callable[[], Mapping[str, Any]] | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        config = app.config
        self.app = app
        self.db = db
        self.models = models
        self.endpoint_for = endpoint_for
        self.clock = clock
        self.rng = random.Random()  # noqa: S311 - jitter for retry timing, not a secret.
        self.trust = TrustStore(
            Path(config["CA_CERT"]),
            Path(config["CRL"]),
            crl_grace=dt.timedelta(seconds=config["CRL_GRACE_SECONDS"]),
            high_water=DatabaseCRLHighWater(db, app, models["state"]),
            clock=lambda: self.clock(),
        )
        self.signer = Signer.from_files(Path(config["TLS_KEY"]), Path(config["TLS_CERT"]))
        self.member_id = self.signer.member_id
        self.transport = HTTPTransport(
            certificate=Path(config["TLS_CERT"]),
            key=Path(config["TLS_KEY"]),
            ca=Path(config["CA_CERT"]),
            trust=self.trust,
            peer_role=peer_role,
        )
        self.clock_skew = dt.timedelta(seconds=config["CLOCK_SKEW_SECONDS"])
        self.settings = DeliverySettings(
            batch_size=config["DELIVERY_BATCH_SIZE"],
            backoff_base=config["DELIVERY_BACKOFF_BASE_SECONDS"],
            backoff_cap=config["DELIVERY_BACKOFF_CAP_SECONDS"],
            max_attempts=config["DELIVERY_MAX_ATTEMPTS"],
            clock_skew=self.clock_skew,
        )
        self.board = BackoffBoard()
        self.worker = DeliveryWorker(app, self.deliverer, board=self.board, threads=config["DELIVERY_THREADS"])
        self.mailbox = MailboxSignal(max_waiting=config["MAILBOX_MAX_POLLS"])
        self.on_dead = dead_letters(self) if dead_letters is not None else None
        self.envelope = envelope
        """Extra claims for every transaction this service signs (the exchange: its directory version)."""
        self.handlers = handlers(self)
        self.is_worker = worker
        """The deployment's worker sends what the outbox holds; every other process wakes it (service.worker)."""
        with app.app_context():
            self.wakeup = Wakeup(db.engine)
        event.listen(db.session, "before_commit", self._before_commit)
        event.listen(db.session, "after_commit", self._after_commit)
        event.listen(db.session, "after_rollback", self._after_rollback)

    def _ours(self) -> bool:
        # The listeners are registered per app but SQLAlchemy applies them to every session of the class.
        return current_app._get_current_object() is self.app  # type: ignore[attr-defined]

    def _before_commit(self, session: Any) -> None:
        destinations = session.info.get(OUTBOX_INFO_KEY)
        if destinations and not self.is_worker and self._ours():
            self.wakeup.in_transaction(session, destinations)

    def _after_commit(self, session: Any) -> None:
        if not self._ours():
            return
        destinations = session.info.pop(OUTBOX_INFO_KEY, None)
        if not destinations:
            return
        if self.is_worker:
            for destination in destinations:
                self.worker.poke(destination)
        else:
            self.wakeup.after_commit(destinations)
        for destination in destinations:
            self.mailbox.notify(destination)

    def _after_rollback(self, session: Any) -> None:
        if not session.in_transaction():
            session.info.pop(OUTBOX_INFO_KEY, None)

    def outbox(self) -> Outbox:
        return Outbox(self.db.session, self.models["outbox"])

    def deliverer(self) -> Deliverer:
        return Deliverer(
            session=self.db.session,
            outbox_model=self.models["outbox"],
            peer_model=self.models["peer"],
            signer=self.signer,
            trust=self.trust,
            transport=self.transport,
            endpoint_for=self.endpoint_for,
            settings=self.settings,
            clock=self.clock,
            rng=self.rng,
            board=self.board,
            on_dead=self.on_dead,
            mailbox_model=self.models.get("mailbox_batch"),
            envelope=self.envelope,
        )

    def inbox(self) -> Inbox:
        return Inbox(
            signer=self.signer,
            trust=self.trust,
            session=self.db.session,
            seen_model=self.models["seen"],
            inbound_model=self.models["inbound"],
            outbox_model=self.models["outbox"],
            handlers=self.handlers,
            clock_skew=self.clock_skew,
        )


def runtime() -> Runtime:
    """The runtime of the current app."""
    value: Runtime = current_app.extensions["hotline"]
    return value
