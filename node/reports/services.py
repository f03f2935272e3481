"""Confirming a report here and following it abroad: receipts, duplicate notices, status updates."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

import schemas
from federation.canonical import canonicalize_url, url_fingerprint
from federation.database import DBSession
from federation.delivery import PRIORITY_NORMAL, PRIORITY_URGENT, Outbox
from federation.errors import ProtocolError
from federation.inbox import InboxContext, WrongRecipientError
from federation.signing import Signer, VerifiedMessage
from federation.timestamps import parse_timestamp
from node.cases.models import CaseEvent
from node.reports.models import Report

REPORT = "hotline.report.v1"
HEADER_FIELDS = ("hosting_country", "legal_status", "priority")
BODY_FIELDS = ("media_type", "site_type", "age_group", "gender", "commercial", "notes")
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
        "confirmed_at": now.isoformat().replace("+00:00", "Z"),
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
        priority=PRIORITY_URGENT if report.priority == "urgent" else PRIORITY_NORMAL,
        now=now,
    )
    session.flush()
    return report, True


def apply_receipt(document: VerifiedMessage, context: InboxContext) -> None:
    """The destination stored our report."""
    claims = document.claims
    if claims["aud"] != context.member_id:
        raise WrongRecipientError(f"receipt is addressed to {claims['aud']!r}")
    report = context.session.get(Report, claims["report_id"])
    if report is None:
        raise UnknownReportError(f"no report {claims['report_id']} was sent from here")
    report.destination = document.author.member_id
    report.received_at = parse_timestamp(claims["received_at"])
    if report.case_id is None:
        report.case_id = report.id


def apply_duplicate(document: VerifiedMessage, context: InboxContext, *, exchange_id: str) -> None:
    """The exchange linked our report to an existing case: follow that case from now on."""
    claims = document.claims
    if document.author.member_id != exchange_id:
        raise NotFromExchangeError("only the exchange issues duplicate notices")
    if claims["aud"] != context.member_id:
        raise WrongRecipientError(f"notice is addressed to {claims['aud']!r}")
    report = context.session.get(Report, claims["report_id"])
    if report is None:
        raise UnknownReportError(f"no report {claims['report_id']} was sent from here")
    report.case_id = claims["case_id"]
    report.destination = claims["destination"]
    report.duplicate_matched_on = ",".join(claims["matched_on"])


def report_view(session: DBSession, report: Report) -> dict[str, Any]:
    """A report with its timeline, as the local API shows it."""
    events = []
    if report.case_id is not None:
        events = list(
            session.scalars(select(CaseEvent).where(CaseEvent.case_id == report.case_id).order_by(CaseEvent.at))
        )
    if report.duplicate_matched_on:
        state = "duplicate"
    elif report.received_at:
        state = "received"
    else:
        state = "sent"
    if events:
        state = events[-1].status
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
        "duplicate_of": report.case_id if report.duplicate_matched_on else None,
        "duplicate_matched_on": report.duplicate_matched_on.split(",") if report.duplicate_matched_on else None,
        "timeline": [
            {"status": event.status, "at": event.at.isoformat(), "by": event.author, "note": event.note}
            for event in events
        ],
    }
