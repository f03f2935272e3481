"""Confirming a report here and following it abroad: receipts, duplicate notices, status updates."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

import schemas
from federation.canonical import canonicalize_url, url_fingerprint
from federation.delivery import Outbox
from federation.errors import ProtocolError
from federation.inbox import InboxContext, WrongRecipientError
from federation.messages import REPORT, format_timestamp, queue_priority
from federation.signing import Signer, VerifiedMessage
from federation.timestamps import parse_timestamp
from node.directory.services import DirectoryCache, UnexpectedMemberError
from node.received.models import CaseEvent
from node.reports.models import DUPLICATE, RECEIVED, REFUSED, SENT, Report
from service.database import DBSession

HEADER_FIELDS = ("hosting_country", "legal_status", "priority")
BODY_FIELDS = (
    "media_type",
    "site_type",
    "age_group",
    "gender",
    "commercial",
    "payment_method",
    "virtual",
    "urgent_reason",
    "notes",
)
MAX_DOCUMENT_CHARS = 32768
"""A document's limit inside a transaction (schemas/transaction.schema.json)."""
INPUT_FIELDS = {"url", "content_hashes", *HEADER_FIELDS, *BODY_FIELDS}


class ReportInputError(ProtocolError):
    status = 422
    code = "invalid_report"


class HostedAtHomeError(ProtocolError):
    status = 422
    code = "hosted_at_home"


class UnknownReportError(ProtocolError):
    status = 404
    code = "unknown_report"


class NotFromExchangeError(ProtocolError):
    status = 403
    code = "not_from_exchange"


class UnknownCaseError(ProtocolError):
    status = 404
    code = "unknown_case"


class StatusTimeError(ProtocolError):
    status = 422
    code = "status_time_invalid"


def confirm_report(
    session: DBSession,
    *,
    signer: Signer,
    outbox: Outbox,
    exchange_id: str,
    unverified_input: Any,
    now: dt.datetime,
    idempotency_key: str | None = None,
) -> tuple[Report, bool]:
    """Record a confirmed report and queue it, signed, for the exchange (one unit of work).

    Returns the report and whether it is new. With an ``idempotency_key`` already used, the report
    recorded then is returned and nothing new is stored: an operator whose request timed out (or whose
    node restarted) can simply send it again.

    Raises:
        ReportInputError, InvalidURLError, SchemaValidationError, HostedAtHomeError.
    """
    if idempotency_key is not None:
        if not 1 <= len(idempotency_key) <= 200 or not idempotency_key.isprintable():
            raise ReportInputError("Idempotency-Key must be 1 to 200 printable characters")
        earlier = session.scalar(select(Report).where(Report.idempotency_key == idempotency_key))
        if earlier is not None:
            return earlier, False
    if not isinstance(unverified_input, dict):
        raise ReportInputError("the report must be a JSON object")
    unknown = sorted(set(unverified_input) - INPUT_FIELDS)
    if unknown:
        raise ReportInputError(f"unknown fields: {', '.join(unknown)}")
    url = unverified_input.get("url")
    if not isinstance(url, str):
        raise ReportInputError("url is required and must be a string")
    hosting_country = unverified_input.get("hosting_country")
    if isinstance(hosting_country, str):
        hosting_country = hosting_country.upper()
    if hosting_country in signer.identity.countries:
        raise HostedAtHomeError(
            f"{hosting_country} is covered by this hotline: send the notice and police referral at home"
        )
    header = {
        "url_fingerprint": url_fingerprint(url),
        "content_hashes": unverified_input.get("content_hashes", []),
        "hosting_country": hosting_country,
        "legal_status": unverified_input.get("legal_status"),
        "priority": unverified_input.get("priority", "normal"),
        "confirmed_at": format_timestamp(now),
    }
    body = {"url": url, **{key: unverified_input[key] for key in BODY_FIELDS if key in unverified_input}}
    claims = signer.claims(exchange_id, now=now, header=header, body=body)
    schemas.validate("report", claims)
    token = signer.sign_compact(REPORT, claims)
    if len(token) > MAX_DOCUMENT_CHARS:
        raise ReportInputError(f"the signed report would be {len(token)} characters; the limit is {MAX_DOCUMENT_CHARS}")
    report = Report(
        id=claims["jti"],
        url=url,
        canonical_url=canonicalize_url(url),
        url_fingerprint=header["url_fingerprint"],
        hosting_country=hosting_country,
        legal_status=header["legal_status"],
        priority=header["priority"],
        content_hashes=header["content_hashes"],
        idempotency_key=idempotency_key,
        details={k: v for k, v in body.items() if k != "url"},
        confirmed_at=now,
    )
    session.add(report)
    outbox.enqueue(
        exchange_id,
        typ=REPORT,
        token=token,
        doc_id=claims["jti"],
        author=signer.member_id,
        priority=queue_priority(report.priority),
        now=now,
    )
    session.flush()
    return report, True


@dataclass(frozen=True)
class FollowRules:
    """What a node needs to authorize the documents the exchange relays about its reports."""

    exchange_id: str
    directory: DirectoryCache
    clock_skew: dt.timedelta


def _own_report(context: InboxContext, report_id: str) -> Report:
    report = context.session.get(Report, report_id)
    if report is None:
        raise UnknownReportError(f"no report {report_id} was sent from here")
    return report


def _require_exchange(document: VerifiedMessage, context: InboxContext, rules: FollowRules) -> None:
    if document.author.member_id != rules.exchange_id:
        raise NotFromExchangeError("only the exchange issues this notice")
    if document.claims["aud"] != context.member_id:
        raise WrongRecipientError(f"notice is addressed to {document.claims['aud']!r}")


def apply_receipt(document: VerifiedMessage, context: InboxContext, *, rules: FollowRules) -> None:
    """The destination stored our report. It must be the destination we expect for it.

    Raises (before any write): UnknownReportError, WrongRecipientError, UnexpectedMemberError,
    DirectoryUnavailableError.
    """
    claims = document.claims
    if claims["aud"] != context.member_id:
        raise WrongRecipientError(f"receipt is addressed to {claims['aud']!r}")
    report = _own_report(context, claims["report_id"])
    author = document.author.member_id
    if report.destination is not None:
        # A duplicate notice named the destination; the receipt must come from it.
        rules.directory.require(context.session, author, expected=report.destination, what="a receipt")
    else:
        expected = rules.directory.current(context.session).covering(report.hosting_country)
        rules.directory.require(context.session, author, expected=expected, what="a receipt")
    report.destination = author
    report.received_at = parse_timestamp(claims["received_at"])
    if report.case_id is None:
        report.case_id = report.id
        report.first_reported_at = report.confirmed_at
    if report.state == SENT:
        report.state = RECEIVED
    _follow(context, report)


def apply_duplicate(document: VerifiedMessage, context: InboxContext, *, rules: FollowRules) -> None:
    """Our report named the location of an existing case, and its destination confirmed it: follow that case."""
    _require_exchange(document, context, rules)
    claims = document.claims
    report = _own_report(context, claims["report_id"])
    report.case_id = claims["case_id"]
    report.destination = claims["destination"]
    report.first_reported_at = parse_timestamp(claims["first_reported_at"])
    report.state = DUPLICATE
    _follow(context, report)


def _follow(context: InboxContext, report: Report) -> None:
    """Statuses of the report's case may follow in this same transaction, before the change is flushed."""
    context.cache.setdefault("following", {})[report.case_id] = report


def apply_refusal(document: VerifiedMessage, context: InboxContext, *, rules: FollowRules) -> None:
    """No hotline accepted our report (refused at the destination, or undeliverable): show why."""
    _require_exchange(document, context, rules)
    claims = document.claims
    report = _own_report(context, claims["report_id"])
    report.state, report.refused_reason = REFUSED, claims["error"]
    report.refused_at = parse_timestamp(claims["at"])


def _followed(context: InboxContext, case_id: str, author: str) -> Report:
    """Our report that follows ``case_id``, which ``author`` must be the destination of.

    Raises: UnknownCaseError, UnexpectedMemberError.
    """
    report = context.cache.get("following", {}).get(case_id)
    if report is None:
        report = context.session.scalars(select(Report).where(Report.case_id == case_id).limit(1)).first()
    if report is None:
        raise UnknownCaseError(f"this node follows no case {case_id}")
    if report.destination != author:
        raise UnexpectedMemberError(f"only {report.destination}, the case's destination, reports on case {case_id}")
    return report


def apply_status(document: VerifiedMessage, context: InboxContext, *, rules: FollowRules) -> None:
    """Record a status update on a case we follow, from that case's destination, dated plausibly.

    Raises (before any write): WrongRecipientError, UnknownCaseError, UnexpectedMemberError, StatusTimeError.
    """
    claims = document.claims
    if claims["aud"] != rules.exchange_id:
        raise WrongRecipientError(f"status is addressed to {claims['aud']!r}, not routed by the exchange")
    report = _followed(context, claims["case_id"], document.author.member_id)
    at = parse_timestamp(claims["at"])
    began = report.first_reported_at or report.confirmed_at
    if at > context.now + rules.clock_skew or at < began - rules.clock_skew:
        raise StatusTimeError("a status must not be dated in the future or before its case existed")
    event = CaseEvent(
        id=claims["jti"],
        case_id=claims["case_id"],
        author=document.author.member_id,
        status=claims["status"],
        at=at,
        received_at=context.now,
    )
    context.session.add(event)
    # A note on this status may follow in the same transaction, before this row is flushed.
    context.cache.setdefault("case_events", {})[(event.author, event.id)] = event


def apply_note(document: VerifiedMessage, context: InboxContext, *, rules: FollowRules) -> None:
    """A free-text note from the destination of a case we reported first, on one of its status updates."""
    claims = document.claims
    if claims["aud"] != context.member_id:
        raise WrongRecipientError(f"note is addressed to {claims['aud']!r}")
    author = document.author.member_id
    _followed(context, claims["case_id"], author)
    key = (author, claims["status_id"])
    event = context.cache.get("case_events", {}).get(key) or context.session.get(CaseEvent, key)
    if event is None or event.case_id != claims["case_id"]:
        raise UnknownCaseError(f"no status {claims['status_id']} of case {claims['case_id']} to attach a note to")
    event.note = claims["note"]


def dead_letter(session: DBSession, row: Any, error: str, now: dt.datetime) -> None:
    """The exchange refused one of our reports outright (no route, say): the analyst must see it."""
    if row.typ != REPORT:
        return
    report = session.get(Report, row.doc_id)
    if report is not None and report.state == SENT:
        report.state, report.refused_at = REFUSED, now
        report.refused_reason = error.split(":", 1)[0].strip()[:64] or "refused"


def report_view(session: DBSession, report: Report) -> dict[str, Any]:
    """The report with its timeline, as the local API shows it."""
    events = []
    if report.case_id is not None:
        events = list(
            session.scalars(select(CaseEvent).where(CaseEvent.case_id == report.case_id).order_by(CaseEvent.at))
        )
    state = events[-1].status if events and report.state in (RECEIVED, DUPLICATE) else report.state
    return {
        "id": report.id,
        "url": report.url,
        "canonical_url": report.canonical_url,
        "url_fingerprint": report.url_fingerprint,
        "hosting_country": report.hosting_country,
        "legal_status": report.legal_status,
        "priority": report.priority,
        "content_hashes": report.content_hashes,
        "details": report.details,
        "confirmed_at": report.confirmed_at.isoformat(),
        "state": state,
        "case_id": report.case_id,
        "destination": report.destination,
        "received_at": report.received_at.isoformat() if report.received_at else None,
        "duplicate_of": report.case_id if report.state == DUPLICATE else None,
        "first_reported_at": report.first_reported_at.isoformat() if report.first_reported_at else None,
        "refused": {"reason": report.refused_reason, "at": report.refused_at.isoformat() if report.refused_at else None}
        if report.state == REFUSED
        else None,
        "timeline": [
            {"status": event.status, "at": event.at.isoformat(), "by": event.author, "note": event.note}
            for event in events
        ],
    }
