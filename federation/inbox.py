"""Receiving a transaction: verify the hop, then apply each document exactly once.

How it works, in order (docs/protocol.md, "Verifying a transaction", numbers the same steps):

1. The body must be JSON, and a JWS flattened serialization.
2. The transaction's signature, certificate and schema verify (:func:`federation.signing.verify_jws`).
3. Its author is the hop's authenticated sender: the member named by the TLS client certificate for a
   pushed transaction, the configured exchange for one collected from the exchange's mailbox.
4. It is addressed to us.
5. Its issued-at is within the clock-skew window, so a captured transaction goes stale (checked in
   step 2, before the certificate's validity at that time, so a stale message reads as stale).
6. Its id was not seen from this sender before (honest senders mint a new transaction per attempt).
7. Each document in it is verified on its own (the origin's signature survives every hop), then
   applied by its type's handler: a document that fails is rejected alone, with its code, and leaves
   nothing behind; the others still apply. Handlers make every check before their first write and
   raise only before it (the contract of :data:`Handler`), so no savepoint is needed per document.
   A document whose author is the hop's sender is at its **first hop**: it must be freshly signed with
   a key that is valid and unrevoked now (:func:`federation.signing.check_first_hop`). Relayed
   documents may be old (a destination can be down for days); their signature is checked at issue time.
8. A document already applied (same author and id, same content) is answered ``duplicate`` without a
   second effect; the same id with different content is refused as ``message_id_reused``. "Same
   content" is the claims without ``iat``: an author re-signs a document it retries after the clock
   window, and that retry is the same document.

A handler that meets a condition which may pass (a :class:`~federation.errors.TransientError`, such as a
directory not fetched yet) refuses the whole transaction instead of rejecting a document for good: the
sender retries it later.

Invariants: a refused transaction stores nothing; a document is applied at most once per receiver; the
answer is a receipt signed by us, listing one outcome per document in the order received.

The steps run in three calls: :meth:`Inbox.check` (1-5 and every signature: CPU only, no statement),
:meth:`Inbox.apply` (6-8, in the session's transaction, which the caller commits) and
:meth:`Inbox.receipt` (signed after the commit). The transactions endpoint holds the database's write
turn (:func:`service.database.writing`) only around ``apply`` and its commit; :meth:`Inbox.receive` runs
all three for a caller that commits after it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select

from certs.identity import NetworkIdentity
from federation.delivery import Outbox
from federation.errors import ProtocolError, TransientError
from federation.messages import TRANSACTION, TRANSACTION_RECEIPT
from federation.signing import (
    MalformedJSONError,
    Signer,
    VerifiedMessage,
    canonical_json,
    check_first_hop,
    flattened_to_compact,
    json_problem,
    verify_jws,
)
from federation.timestamps import from_numeric_date
from federation.trust import TrustStore
from service.database import BulkInserts, DBSession, KeyLookup, Query

log = logging.getLogger(__name__)


class AuthorMismatchError(ProtocolError):
    status = 403
    code = "author_mismatch"


class WrongRecipientError(ProtocolError):
    status = 403
    code = "wrong_recipient"


class ReplayedMessageError(ProtocolError):
    status = 409
    code = "replayed_message"


class MessageIdReusedError(ProtocolError):
    status = 409
    code = "message_id_reused"


@dataclass
class InboxContext:
    """What a document handler may use: the session, the time, the outbox and the hop's sender."""

    session: DBSession
    now: dt.datetime
    outbox: Outbox
    sender: NetworkIdentity
    member_id: str
    documents: list[VerifiedMessage] = field(default_factory=list)
    """Every verified document of the transaction, so a handler can look up what the batch needs at once."""
    inserts: BulkInserts = field(default_factory=BulkInserts)
    """New rows, written in one statement per table after the last document (not visible before)."""
    cache: dict[str, Any] = field(default_factory=dict)
    """Scratch space shared by the handlers of one transaction (lookups worth doing once per batch)."""
    finishers: list[Callable[[], None]] = field(default_factory=list)
    """Run once after the last document (a handler's batched writes: the audit entries of the exchange)."""
    envelope: dict[str, Any] = field(default_factory=dict)
    """The transaction's own claims (without its documents): what the hop's sender said about the batch."""


@dataclass(frozen=True)
class Arrival:
    """A transaction whose signatures, certificates and schemas were checked (:meth:`Inbox.check`); nothing
    of it is stored yet."""

    sender: str
    now: dt.datetime
    transaction: VerifiedMessage
    checked: list[VerifiedMessage | dict[str, Any]]
    """Each document, verified, or already rejected with its outcome."""


Handler = Callable[[VerifiedMessage, InboxContext], None]
"""Applies one verified document. It must make every check, and raise any ProtocolError, before its
first write to the session: a handler that raises after writing would leave half a document behind."""


def document_digest(claims: dict[str, Any]) -> str:
    """What makes two documents with one id the same document: their claims, except when they were signed."""
    content = {key: value for key, value in claims.items() if key != "iat"}
    return hashlib.sha256(canonical_json(content)).hexdigest()


_LOOKUPS: dict[tuple[type[Any], type[Any]], tuple[Query, KeyLookup]] = {}


def _lookups(seen_model: type[Any], inbound_model: type[Any]) -> tuple[Query, KeyLookup]:
    """The inbox's statements, built once per service (building one costs more than SQLite's answer)."""
    found = _LOOKUPS.get((seen_model, inbound_model))
    if found is not None:
        return found
    seen = Query(
        select(seen_model.jti).where(seen_model.sender == bindparam("sender"), seen_model.jti == bindparam("jti"))
    )
    model = inbound_model
    found = _LOOKUPS[(seen_model, inbound_model)] = (
        seen,
        KeyLookup((model.author, model.jti, model.digest), model.author, model.jti),
    )
    return found


class Inbox:
    """Verifies and applies incoming transactions for one service (exchange or node)."""

    def __init__(
        self,
        *,
        signer: Signer,
        trust: TrustStore,
        session: DBSession,
        seen_model: type[Any],
        inbound_model: type[Any],
        outbox_model: type[Any],
        handlers: Mapping[str, Handler],
        clock_skew: dt.timedelta,
    ) -> None:
        self.signer = signer
        self.trust = trust
        self.session = session
        self.seen_model = seen_model
        self.inbound_model = inbound_model
        self.outbox_model = outbox_model
        self.handlers = handlers
        self.clock_skew = clock_skew
        self._seen, self._digests = _lookups(seen_model, inbound_model)

    def receive(self, unverified_body: bytes, *, sender: str, now: dt.datetime) -> dict[str, str]:
        """Verify and apply one transaction; return our signed transaction receipt (flattened JWS).

        The three steps below in one call, for a caller that commits after it (the mailbox poller). The
        transactions endpoint calls them one by one, to hold the database's write turn only for
        :meth:`apply` and its commit.

        Raises:
            ProtocolError: the transaction as a whole is refused; nothing was stored.
        """
        arrival = self.check(unverified_body, sender=sender, now=now)
        return self.receipt(arrival, self.apply(arrival))

    def check(self, unverified_body: bytes, *, sender: str, now: dt.datetime) -> Arrival:
        """Steps 1-5, and each document's signature, certificate and schema (step 7's checks): CPU only,
        no statement, so none of it runs while the caller holds SQLite's write lock.

        Raises:
            ProtocolError: the transaction as a whole is refused.
        """
        # 1. JSON, and a flattened JWS.
        try:
            unverified_envelope = json.loads(unverified_body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise MalformedJSONError(f"body is not valid JSON: {json_problem(exc)}") from exc
        token = flattened_to_compact(unverified_envelope)
        with self.trust.one_crl():  # The transaction and its documents, judged by one revocation list.
            return self._check(token, sender, now)

    def _check(self, token: str, sender: str, now: dt.datetime) -> Arrival:
        # 2. Signature, certificate, schema.
        transaction = verify_jws(
            token, expected_typ=TRANSACTION, trust=self.trust, now=now, clock_skew=self.clock_skew, fresh=True
        )
        claims = transaction.claims
        # 3. The author is the hop's authenticated sender.
        if transaction.author.member_id != sender:
            raise AuthorMismatchError(f"transaction signed by {transaction.author.member_id!r} but sent by {sender!r}")
        # 4. Addressed to us.
        if claims["aud"] != self.signer.member_id:
            raise WrongRecipientError(
                f"transaction is addressed to {claims['aud']!r}, not to {self.signer.member_id!r}"
            )
        # 5. Fresh: checked inside verify_jws (fresh=True), before the certificate's validity at issued-at.
        # 7 (first part). Each document's signature, certificate and schema.
        checked = [self._verify(document, now, sender) for document in claims["documents"]]
        return Arrival(sender=sender, now=now, transaction=transaction, checked=checked)

    def apply(self, arrival: Arrival) -> list[dict[str, Any]]:
        """Steps 6-8 in the session's transaction: one outcome per document, in the order received. The
        caller commits (or rolls back, on an exception).

        Raises:
            ProtocolError: the transaction as a whole is refused (replayed, or a handler's transient
                condition); nothing of it was written.
        """
        sender, now, claims = arrival.sender, arrival.now, arrival.transaction.claims
        # 6. Not replayed.
        connection = self.session.connection()
        if self._seen.first(connection, {"sender": sender, "jti": claims["jti"]}) is not None:
            raise ReplayedMessageError(f"transaction {claims['jti']} from {sender} was already received")
        # 7, 8. Each document on its own: look up every verified document's id at once, then apply.
        inserts = BulkInserts()
        inserts.add(self.seen_model, sender=sender, jti=claims["jti"], issued_at=from_numeric_date(claims["iat"]))
        context = InboxContext(
            session=self.session,
            now=now,
            outbox=Outbox(self.session, self.outbox_model, inserts=inserts),
            sender=arrival.transaction.author,
            member_id=self.signer.member_id,
            inserts=inserts,
            envelope={key: value for key, value in claims.items() if key != "documents"},
        )
        context.documents = [item for item in arrival.checked if isinstance(item, VerifiedMessage)]
        applied = self._applied_digests(context.documents)
        # Handlers see this batch's own writes through context.cache; one flush at the end writes them all.
        with self.session.no_autoflush:
            results = [self._apply(item, context, applied) for item in arrival.checked]
        for finish in context.finishers:
            finish()
        inserts.flush(self.session)
        self.session.flush()
        return results

    def receipt(self, arrival: Arrival, results: list[dict[str, Any]]) -> dict[str, str]:
        """Our signed transaction receipt (flattened JWS): sign it once the outcomes are committed."""
        claims = self.signer.claims(
            arrival.sender, now=arrival.now, transaction=arrival.transaction.claims["jti"], results=results
        )
        return self.signer.sign_flattened(TRANSACTION_RECEIPT, claims)

    def _verify(self, unverified_document: str, now: dt.datetime, sender: str) -> VerifiedMessage | dict[str, Any]:
        try:
            document = verify_jws(
                unverified_document,
                expected_typ=tuple(self.handlers),
                trust=self.trust,
                now=now,
                clock_skew=self.clock_skew,
            )
        except TransientError:
            raise
        except ProtocolError as exc:
            return _rejected(None, exc)
        if document.author.member_id == sender:
            try:
                check_first_hop(
                    document.author,
                    from_numeric_date(document.claims["iat"]),
                    trust=self.trust,
                    now=now,
                    clock_skew=self.clock_skew,
                )
            except ProtocolError as exc:
                return _rejected(document.claims["jti"], exc)
        return document

    def _applied_digests(self, documents: list[VerifiedMessage]) -> dict[tuple[str, str], str]:
        """The digests of the documents of this batch that were applied before, in one query."""
        keys = list({(document.author.member_id, document.claims["jti"]) for document in documents})
        if not keys:
            return {}
        rows = self._digests(self.session.connection(), keys)
        return {(author, jti): digest for author, jti, digest in rows}

    def _apply(
        self, item: VerifiedMessage | dict[str, Any], context: InboxContext, applied: dict[tuple[str, str], str]
    ) -> dict[str, Any]:
        if not isinstance(item, VerifiedMessage):
            return item
        document, document_id = item, item.claims["jti"]
        author = document.author.member_id
        digest = document_digest(document.claims)
        try:
            if (author, document_id) in applied:
                if applied[(author, document_id)] != digest:
                    raise MessageIdReusedError(f"{author} already sent a different document with id {document_id}")
                return {"id": document_id, "outcome": "duplicate"}
            # Handlers check everything before their first write and raise only before it, so a
            # rejected document leaves nothing behind without the cost of a savepoint per document.
            self.handlers[document.typ](document, context)
        except TransientError:
            raise
        except ProtocolError as exc:
            return _rejected(document_id, exc)
        context.inserts.add(
            self.inbound_model, author=author, jti=document_id, typ=document.typ, digest=digest, received_at=context.now
        )
        applied[(author, document_id)] = digest
        return {"id": document_id, "outcome": "accepted"}


def _rejected(document_id: str | None, exc: ProtocolError) -> dict[str, Any]:
    log.info("rejected document %s: %s %s", document_id, exc.code, exc.message)
    return {"id": document_id, "outcome": "rejected", "error": exc.code, "message": exc.message}
