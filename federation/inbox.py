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
   applied inside a savepoint: a document that fails is rejected alone, with its code, and leaves
   nothing behind; the others still apply.
8. A document already applied (same author and id, same bytes) is answered ``duplicate`` without a
   second effect; the same id with different bytes is refused as ``message_id_reused``.

Invariants: a refused transaction stores nothing; a document is applied at most once per receiver; the
answer is a receipt signed by us, listing one outcome per document in the order received. The caller
(the request layer) commits once after :meth:`Inbox.receive` returns.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from certs.identity import NetworkIdentity
from federation.delivery import Outbox
from federation.errors import ProtocolError
from federation.signing import (
    MalformedJSONError,
    Signer,
    VerifiedMessage,
    flattened_to_compact,
    verify_jws,
)
from federation.trust import TrustStore

log = logging.getLogger(__name__)

TRANSACTION = "hotline.transaction.v1"
TRANSACTION_RECEIPT = "hotline.transaction-receipt.v1"


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

    session: Session
    now: dt.datetime
    outbox: Outbox
    sender: NetworkIdentity
    member_id: str


Handler = Callable[[VerifiedMessage, InboxContext], None]


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class Inbox:
    """Verifies and applies incoming transactions for one service (exchange or node)."""

    def __init__(
        self,
        *,
        signer: Signer,
        trust: TrustStore,
        session: Session,
        seen_model: type,
        inbound_model: type,
        outbox: Outbox,
        handlers: Mapping[str, Handler],
        clock_skew: dt.timedelta,
    ) -> None:
        self.signer = signer
        self.trust = trust
        self.session = session
        self.seen_model = seen_model
        self.inbound_model = inbound_model
        self.outbox = outbox
        self.handlers = handlers
        self.clock_skew = clock_skew

    def receive(self, unverified_body: bytes, *, sender: str, now: dt.datetime) -> dict[str, str]:
        """Verify and apply one transaction; return our signed transaction receipt (flattened JWS).

        Raises:
            ProtocolError: the transaction as a whole is refused; nothing was stored.
        """
        # 1. JSON, and a flattened JWS.
        try:
            unverified_envelope = json.loads(unverified_body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedJSONError(f"body is not valid JSON: {exc}") from exc
        token = flattened_to_compact(unverified_envelope)
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
            raise WrongRecipientError(f"transaction is addressed to {claims['aud']!r}, not to {self.signer.member_id!r}")
        # 5. Fresh: checked inside verify_jws (fresh=True), before the certificate's validity at issued-at.
        issued_at = dt.datetime.fromtimestamp(claims["iat"], dt.UTC)
        # 6. Not replayed.
        if self.session.get(self.seen_model, (sender, claims["jti"])) is not None:
            raise ReplayedMessageError(f"transaction {claims['jti']} from {sender} was already received")
        self.session.add(self.seen_model(sender=sender, jti=claims["jti"], issued_at=issued_at))
        # 7, 8. Each document on its own.
        context = InboxContext(
            session=self.session, now=now, outbox=self.outbox, sender=transaction.author, member_id=self.signer.member_id
        )
        results = [self._apply(document, context) for document in claims["documents"]]
        self.session.flush()
        receipt = self.signer.claims(sender, now=now, transaction=claims["jti"], results=results)
        return self.signer.sign_flattened(TRANSACTION_RECEIPT, receipt)

    def _apply(self, unverified_document: str, context: InboxContext) -> dict[str, Any]:
        document_id: str | None = None
        try:
            document = verify_jws(
                unverified_document,
                expected_typ=tuple(self.handlers),
                trust=self.trust,
                now=context.now,
                clock_skew=self.clock_skew,
            )
            document_id = document.claims["jti"]
            author = document.author.member_id
            digest = token_digest(unverified_document)
            existing = self.session.get(self.inbound_model, (author, document_id))
            if existing is not None:
                if existing.digest != digest:
                    raise MessageIdReusedError(f"{author} already sent a different document with id {document_id}")
                return {"id": document_id, "outcome": "duplicate"}
            with self.session.begin_nested():
                self.handlers[document.typ](document, context)
                self.session.add(
                    self.inbound_model(
                        author=author, jti=document_id, typ=document.typ, digest=digest, received_at=context.now
                    )
                )
            return {"id": document_id, "outcome": "accepted"}
        except ProtocolError as exc:
            log.info("rejected document %s from %s: %s %s", document_id, context.sender.member_id, exc.code, exc.message)
            return {"id": document_id, "outcome": "rejected", "error": exc.code, "message": exc.message}
