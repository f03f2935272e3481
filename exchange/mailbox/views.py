"""``GET /v1/mailbox`` (long-poll collection) and ``POST /v1/mailbox/receipts`` (acknowledgement)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from exchange.members.services import require_active
from federation.errors import ProtocolError
from federation.runtime import runtime
from federation.trust import RevokedCertificateError
from federation.web import PeerCertificate, current_peer, json_body
from service.policies import policy

blueprint = Blueprint("mailbox", __name__)
MAX_WAIT_SECONDS = 25


class TooManyPollsError(ProtocolError):
    status = 429
    code = "too_many_polls"


def _still_allowed(member_id: str) -> None:
    """Re-check, before anything is handed over, that the member may still collect (suspension, revocation).

    Raises:
        MemberSuspendedError, UnknownMemberError, RevokedCertificateError.
    """
    rt = runtime()
    peer = current_peer()
    require_active(rt.db.session, member_id)
    rt.db.session.rollback()
    if rt.trust.is_revoked(peer.serial, at=rt.clock()):
        raise RevokedCertificateError(f"certificate {peer.serial:x} has been revoked")


@blueprint.get("/v1/mailbox")
@policy(PeerCertificate(roles=("member",)))
def collect() -> Any:
    """The member's next batch as a signed transaction, waiting up to ``wait`` seconds for one.

    A member has one poll at a time: a newer poll ends an older one, which answers ``204`` at once.
    """
    rt = runtime()
    member_id = current_peer().member_id
    try:
        wait = min(max(int(request.args.get("wait", "0")), 0), MAX_WAIT_SECONDS)
    except ValueError as exc:
        raise ProtocolError("wait must be a whole number of seconds", code="bad_request") from exc
    rt.deliverer().peer_contacted(member_id, rt.clock(), certificate_not_after=current_peer().not_after)
    rt.db.session.commit()
    poll = rt.mailbox.open_poll(member_id)
    if poll is None:
        raise TooManyPollsError("too many members are polling this process; retry in a second")
    try:
        deadline = time.monotonic() + wait
        while True:
            generation = rt.mailbox.generation(member_id)
            _still_allowed(member_id)
            transaction = rt.deliverer().collect(member_id)
            if transaction is not None:
                return jsonify(transaction)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or rt.mailbox.closed or not rt.mailbox.current(member_id, poll):
                return Response(status=204)
            # Woken at once by a commit in this process or a newer poll; every second, look for commits
            # by other processes.
            rt.mailbox.wait(member_id, generation, timeout=min(remaining, 1.0), poll=poll)
    finally:
        rt.mailbox.close_poll(member_id, poll)


@blueprint.post("/v1/mailbox/receipts")
@policy(PeerCertificate(roles=("member",)))
def acknowledge() -> Any:
    """Settle collected documents from the member's signed transaction receipt."""
    rt = runtime()
    member_id = current_peer().member_id
    settled = rt.deliverer().settle_receipt(member_id, json_body())
    return jsonify({"settled": settled})
