"""The transactions endpoint, the same on the exchange and on every node: ``POST /v1/transactions``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from sqlalchemy.exc import IntegrityError, OperationalError

from federation.errors import TransientError
from federation.runtime import runtime
from federation.web import PeerCertificate, current_peer
from service.database import writing
from service.policies import policy


def transactions_blueprint(*, sender_roles: tuple[str, ...]) -> Blueprint:
    """Return the blueprint that accepts transactions from peers holding one of ``sender_roles``."""
    blueprint = Blueprint("transactions", __name__)

    @blueprint.post("/v1/transactions")
    @policy(PeerCertificate(roles=sender_roles))
    def receive_transaction() -> Any:
        rt = runtime()
        now = rt.clock()
        peer = current_peer()
        inbox = rt.inbox()
        # Signatures first, with no statement run: none of that CPU holds up another writer.
        arrival = inbox.check(request.get_data(cache=False), sender=peer.member_id, now=now)
        with writing(rt.db.engine):  # This process's turn to write: no polling for SQLite's lock.
            try:
                results = inbox.apply(arrival)
                rt.deliverer().peer_contacted(peer.member_id, now, certificate_not_after=peer.not_after)
                rt.db.session.commit()
            except IntegrityError as exc:
                # Another process applied a conflicting document at the same moment (two reports opening
                # a case at one location). Nothing of this transaction is stored; the sender retries it,
                # and the retry meets the other process's committed rows.
                rt.db.session.rollback()
                raise TransientError("a concurrent transaction conflicted with this one; retry it") from exc
            except OperationalError as exc:
                rt.db.session.rollback()
                if "database is locked" not in str(exc):
                    raise
                # SQLite's write lock did not come within its busy timeout (30 s): nothing was stored.
                raise TransientError("the database is busy; retry this transaction") from exc
            except BaseException:
                rt.db.session.rollback()  # Before the next thread's turn: it would wait for our lock.
                raise
        # Signed once committed: a receipt never vouches for outcomes that were not stored.
        return jsonify(inbox.receipt(arrival, results))

    return blueprint
