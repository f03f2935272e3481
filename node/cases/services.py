"""Reports from abroad: store, acknowledge to the origin, and send what happens back through the exchange."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from federation.canonical import url_fingerprint
from federation.database import DBSession
from federation.delivery import PRIORITY_NORMAL, PRIORITY_URGENT, Outbox
from federation.errors import ProtocolError
from federation.inbox import InboxContext, WrongRecipientError
from federation.signing import Signer, VerifiedMessage
from federation.timestamps import parse_timestamp
from node.cases.models import CaseEvent, InboundCase

RECEIPT = "hotline.receipt.v1"
STATUS = "hotline.status.v1"
CASE_STATUSES = ("assessed", "not_illegal_here", "ntd_sent", "police_notified", "removed", "reappeared", "moved")


class FingerprintMismatchError(ProtocolError):
    status = 422
    code = "fingerprint_mismatch"


class UnknownCaseError(ProtocolError):
    status = 404
    code = "unknown_case"


class StatusInputError(ProtocolError):
    status = 422
    code = "invalid_status"


def _timestamp(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def accept_report(document: VerifiedMessage, context: InboxContext, *, signer: Signer, exchange_id: str) -> None:
    """Store a report routed to us and queue our signed receipt for its origin."""
    claims = document.claims
    if claims["aud"] != exchange_id:
        raise WrongRecipientError(f"report is addressed to {claims['aud']!r}, not routed by the exchange")
    header, body = claims["header"], claims["body"]
    # The exchange routed on the header; check the origin's header says the same as its body.
    if url_fingerprint(body["url"]) != header["url_fingerprint"]:
        raise FingerprintMismatchError("url_fingerprint does not match the canonical form of body.url")
    now = context.now
    context.session.add(
        InboundCase(
            id=claims["jti"],
            origin=document.author.member_id,
            url=body["url"],
            url_fingerprint=header["url_fingerprint"],
            hosting_country=header["hosting_country"],
            legal_status=header["legal_status"],
            priority=header["priority"],
            content_hashes=header["content_hashes"],
            details={k: v for k, v in body.items() if k != "url"},
            confirmed_at=parse_timestamp(header["confirmed_at"]),
            received_at=now,
            status="received",
        )
    )
    receipt = signer.claims(document.author.member_id, now=now, report_id=claims["jti"], received_at=_timestamp(now))
    context.outbox.enqueue(
        exchange_id,
        typ=RECEIPT,
        token=signer.sign_compact(RECEIPT, receipt),
        doc_id=receipt["jti"],
        priority=PRIORITY_URGENT if header["priority"] == "urgent" else PRIORITY_NORMAL,
        now=now,
    )


def apply_status(document: VerifiedMessage, context: InboxContext, *, exchange_id: str) -> None:
    """Record a status update on a case we reported (directly or as a duplicate)."""
    claims = document.claims
    if claims["aud"] != exchange_id:
        raise WrongRecipientError(f"status is addressed to {claims['aud']!r}, not routed by the exchange")
    context.session.add(
        CaseEvent(
            id=claims["jti"],
            case_id=claims["case_id"],
            author=document.author.member_id,
            status=claims["status"],
            at=parse_timestamp(claims["at"]),
            note=claims.get("note"),
            received_at=context.now,
        )
    )


def record_status(
    session: DBSession,
    *,
    signer: Signer,
    outbox: Outbox,
    exchange_id: str,
    case_id: str,
    unverified_input: Any,
    now: dt.datetime,
) -> CaseEvent:
    """An analyst here records what happened to a case we received; it goes back through the exchange."""
    case = session.get(InboundCase, case_id)
    if case is None:
        raise UnknownCaseError(f"no case {case_id} was received here")
    if not isinstance(unverified_input, dict) or unverified_input.get("status") not in CASE_STATUSES:
        raise StatusInputError(f"status must be one of {', '.join(CASE_STATUSES)}")
    note = unverified_input.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 2000):
        raise StatusInputError("note must be a string of at most 2000 characters")
    fields: dict[str, Any] = {"case_id": case_id, "status": unverified_input["status"], "at": _timestamp(now)}
    if note:
        fields["note"] = note
    claims = signer.claims(exchange_id, now=now, **fields)
    outbox.enqueue(
        exchange_id,
        typ=STATUS,
        token=signer.sign_compact(STATUS, claims),
        doc_id=claims["jti"],
        priority=PRIORITY_URGENT if case.priority == "urgent" else PRIORITY_NORMAL,
        now=now,
    )
    event = CaseEvent(
        id=claims["jti"],
        case_id=case_id,
        author=signer.member_id,
        status=claims["status"],
        at=now,
        note=note,
        received_at=now,
    )
    session.add(event)
    case.status = claims["status"]
    session.flush()
    return event


def case_view(session: DBSession, case: InboundCase) -> dict[str, Any]:
    events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.at))
    return {
        "id": case.id,
        "origin": case.origin,
        "url": case.url,
        "hosting_country": case.hosting_country,
        "legal_status": case.legal_status,
        "priority": case.priority,
        "content_hashes": case.content_hashes,
        "details": case.details,
        "confirmed_at": case.confirmed_at.isoformat(),
        "received_at": case.received_at.isoformat(),
        "status": case.status,
        "timeline": [{"status": e.status, "at": e.at.isoformat(), "by": e.author, "note": e.note} for e in events],
    }
