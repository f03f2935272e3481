"""Confirming a report here and following it abroad: receipts, duplicate notices, status updates."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm.attributes import set_committed_value

import schemas
from federation.canonical import canonical_fingerprint, canonicalize_url
from federation.delivery import Outbox
from federation.errors import ProtocolError
from federation.inbox import InboxContext, WrongRecipientError
from federation.messages import RECEIPT, REFUSAL, REPORT, format_timestamp, queue_priority
from federation.signing import Signer, VerifiedMessage
from federation.timestamps import parse_timestamp
from node.directory.services import DirectoryCache, UnexpectedMemberError
from node.received.models import CaseEvent
from node.reports.models import DUPLICATE, RECEIVED, REFUSED, SENT, Report
from service.database import BulkInserts, DBSession

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
    earlier = _earlier(session, idempotency_key)
    if earlier is not None:
        return earlier, False
    values, token = _signed_report(signer, exchange_id, unverified_input, now, idempotency_key)
    report = Report(**values)
    session.add(report)
    _queue(outbox, signer, exchange_id, values, token, now)
    session.flush()
    return report, True


def _earlier(session: DBSession, idempotency_key: str | None) -> Report | None:
    """The report stored earlier under this idempotency key, if any (the key checked first)."""
    if idempotency_key is None:
        return None
    if not 1 <= len(idempotency_key) <= 200 or not idempotency_key.isprintable():
        raise ReportInputError("Idempotency-Key must be 1 to 200 printable characters")
    found: Report | None = session.scalar(select(Report).where(Report.idempotency_key == idempotency_key))
    return found


def _signed_report(
    signer: Signer, exchange_id: str, unverified_input: Any, now: dt.datetime, idempotency_key: str | None
) -> tuple[dict[str, Any], str]:
    """Check an operator's report and sign it for the exchange: the report's row, and its token."""
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
    canonical = canonicalize_url(url)
    header = {
        "url_fingerprint": canonical_fingerprint(canonical),
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
    values = {
        "id": claims["jti"],
        "url": url,
        "canonical_url": canonical,
        "url_fingerprint": header["url_fingerprint"],
        "hosting_country": hosting_country,
        "legal_status": header["legal_status"],
        "priority": header["priority"],
        "content_hashes": header["content_hashes"],
        "idempotency_key": idempotency_key,
        "details": {k: v for k, v in body.items() if k != "url"},
        "confirmed_at": now,
    }
    return values, token


def _queue(
    outbox: Outbox, signer: Signer, exchange_id: str, values: dict[str, Any], token: str, now: dt.datetime
) -> None:
    """Queue a report's signed token for the exchange."""
    outbox.enqueue(
        exchange_id,
        typ=REPORT,
        token=token,
        doc_id=values["id"],
        author=signer.member_id,
        priority=queue_priority(values["priority"]),
        now=now,
    )


MAX_BATCH = 1000
"""Reports in one operator batch: about 1.5 MB of JSON at most, one database transaction."""


def confirm_batch(
    session: DBSession,
    *,
    signer: Signer,
    outbox: Outbox,
    exchange_id: str,
    unverified_input: Any,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """Confirm and forward up to MAX_BATCH reports in one unit of work; one outcome per report, in order.

    ``{"reports": [report, ...]}``; each report is what ``POST /api/v1/reports`` takes, plus an optional
    ``idempotency_key`` (a report whose key was used before answers ``duplicate`` with the report stored
    then). A refused report is refused alone, with its reason; nothing of it is stored.

    Raises:
        ReportInputError: the batch itself is malformed (nothing is stored).
    """
    if not isinstance(unverified_input, dict) or set(unverified_input) != {"reports"}:
        raise ReportInputError('the batch must be a JSON object {"reports": [...]}')
    items = unverified_input["reports"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise ReportInputError(f"reports must be a list of 1 to {MAX_BATCH} reports")
    results: list[dict[str, Any]] = []
    keys: dict[str, str] = {}
    # Rows, not ORM objects, written together after the last report: tracking each report and its outbox
    # row as objects cost the console 367-378 µs of CPU per report of a 500-report batch, 220-236 µs
    # as rows (issue 11).
    inserts = BulkInserts()
    queue = Outbox(outbox.session, outbox.model, inserts=inserts)
    for index, item in enumerate(items):
        key = item.pop("idempotency_key", None) if isinstance(item, dict) else None
        try:
            if key is not None and not isinstance(key, str):
                raise ReportInputError("idempotency_key must be a string")
            if key is not None and key in keys:
                results.append({"index": index, "outcome": "duplicate", "id": keys[key]})
                continue
            earlier = _earlier(session, key)
            if earlier is not None:
                report_id, created = earlier.id, False
            else:
                values, token = _signed_report(signer, exchange_id, item, now, key)
                inserts.add(Report, **values)
                _queue(queue, signer, exchange_id, values, token, now)
                report_id, created = values["id"], True
        except ProtocolError as exc:
            results.append({"index": index, "outcome": "refused", "error": exc.code, "message": exc.message})
            continue
        if key is not None:
            keys[key] = report_id
        results.append({"index": index, "outcome": "accepted" if created else "duplicate", "id": report_id})
    inserts.flush(session)
    session.flush()
    return results


@dataclass(frozen=True)
class FollowRules:
    """What a node needs to authorize the documents the exchange relays about its reports."""

    exchange_id: str
    directory: DirectoryCache
    clock_skew: dt.timedelta
    signer: Signer
    """Ours: a report whose content moved is signed again, for its new destination."""


def _own_report(context: InboxContext, report_id: str) -> Report:
    """Our report ``report_id``: as first sent, or as sent again after its content moved."""
    known: dict[str, Report] | None = context.cache.get("own_reports")
    if known is None:
        # Every report the transaction's receipts and refusals name, in one query (kept for the batch).
        wanted = {report_id} | {
            item.claims["report_id"] for item in context.documents if item.typ in (RECEIPT, REFUSAL)
        }
        query = select(Report).where(Report.id.in_(sorted(wanted)))
        known = context.cache["own_reports"] = {row.id: row for row in context.session.scalars(query)}
    report = known.get(report_id) or context.session.get(Report, report_id)
    if report is None:
        resent: dict[str, Report] = context.cache.get("resent", {})
        report = resent.get(report_id) or context.session.scalar(select(Report).where(Report.resent_as == report_id))
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
        rules.directory.require(
            context.session,
            author,
            expected=report.destination,
            what="a receipt",
            version=context.envelope.get("directory"),
        )
    else:
        expected = rules.directory.current(context.session).covering(report.hosting_country)
        rules.directory.require(
            context.session, author, expected=expected, what="a receipt", version=context.envelope.get("directory")
        )
    received: dict[str, Any] = {"destination": author, "received_at": parse_timestamp(claims["received_at"])}
    if report.case_id is None:
        received.update(case_id=report.id, first_reported_at=report.confirmed_at)
    if report.state == SENT:
        received["state"] = RECEIVED
    elif report.state == REFUSED:
        # The secretariat re-queued it after fixing the cause, and a hotline took it: the refusal is lifted.
        received.update(state=RECEIVED, refused_reason=None, refused_at=None)
    _received(context, report, received)
    _follow(context, report)


_RECEIVED_COLUMNS = (
    "destination",
    "received_at",
    "case_id",
    "first_reported_at",
    "state",
    "refused_reason",
    "refused_at",
)
_REPORTS = Report.__table__
_RECEIVED = (
    update(_REPORTS)
    .where(_REPORTS.c.id == bindparam("report"))
    .values({name: bindparam(f"new_{name}", type_=_REPORTS.c[name].type) for name in _RECEIVED_COLUMNS})
)


def _received(context: InboxContext, report: Report, changes: dict[str, Any]) -> None:
    """Apply a receipt's ``changes`` to ``report``: on the object at once (as its committed state), and
    to its row in one statement for every receipt of the batch, after the last document.

    The ORM's flush of one changed report cost about as much as applying the receipt (issue 11). Every
    column a receipt may change is written, each with the object's value when the receipt was applied;
    a change a later document of the batch makes through the object is flushed after this statement.
    """
    for name, value in changes.items():
        set_committed_value(report, name, value)
    rows: list[dict[str, Any]] | None = context.cache.get("received_rows")
    if rows is None:
        rows = context.cache["received_rows"] = []

        def write() -> None:
            context.session.connection().execute(_RECEIVED, rows)

        context.finishers.append(write)
    rows.append({"report": report.id, **{f"new_{name}": getattr(report, name) for name in _RECEIVED_COLUMNS}})


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
        extra={"moved_to": claims["moved_to"]} if "moved_to" in claims else {},
    )
    context.session.add(event)
    # A note on this status may follow in the same transaction, before this row is flushed.
    context.cache.setdefault("case_events", {})[(event.author, event.id)] = event


def apply_reroute(document: VerifiedMessage, context: InboxContext, *, rules: FollowRules) -> None:
    """A case we follow moved to another country: follow it at its new destination. Our own report that
    opened it is signed again with the case's id and sent to the exchange, which passes it to the new
    destination (the exchange cannot: it never reads a body). Content that moved into a country we cover
    becomes a case we handle here.

    Raises (before any write): NotFromExchangeError, WrongRecipientError, UnknownCaseError.
    """
    _require_exchange(document, context, rules)
    claims = document.claims
    following = context.cache.get("following", {}).get(claims["case_id"])
    reports = [following] if following is not None else []
    reports += [
        report
        for report in context.session.scalars(select(Report).where(Report.case_id == claims["case_id"]))
        if report is not following
    ]
    if not reports:
        raise UnknownCaseError(f"this node follows no case {claims['case_id']}")
    now, own = context.now, rules.signer.member_id
    home = claims["destination"] == own
    for report in reports:
        report.destination = claims["destination"]
        report.hosting_country = claims["hosting_country"]
        if home or not claims["resend"] or report.id != claims["case_id"]:
            continue
        header = {
            "url_fingerprint": report.url_fingerprint,
            "content_hashes": report.content_hashes,
            "hosting_country": report.hosting_country,
            "legal_status": report.legal_status,
            "priority": report.priority,
            "confirmed_at": format_timestamp(report.first_reported_at or report.confirmed_at),
            "case_id": claims["case_id"],
        }
        again = rules.signer.claims(
            rules.exchange_id, now=now, header=header, body={"url": report.url, **report.details}
        )
        report.resent_as = again["jti"]
        context.cache.setdefault("resent", {})[again["jti"]] = report
        context.outbox.enqueue(
            rules.exchange_id,
            typ=REPORT,
            token=rules.signer.sign_compact(REPORT, again),
            doc_id=again["jti"],
            author=own,
            priority=queue_priority(report.priority),
            now=now,
        )
    if home:
        from node.received.services import open_received_here

        opener = next((report for report in reports if report.id == claims["case_id"]), reports[0])
        open_received_here(
            context.session,
            case_id=claims["case_id"],
            url=opener.url,
            url_fingerprint=opener.url_fingerprint,
            hosting_country=claims["hosting_country"],
            legal_status=opener.legal_status,
            priority=opener.priority,
            content_hashes=opener.content_hashes,
            details=opener.details,
            confirmed_at=parse_timestamp(claims["first_reported_at"]),
            member_id=own,
            now=now,
        )
    context.session.add(
        CaseEvent(
            id=claims["jti"],
            case_id=claims["case_id"],
            author=document.author.member_id,
            status="rerouted",
            at=now,
            received_at=now,
            extra={
                "hosting_country": claims["hosting_country"],
                "destination": claims["destination"],
                "previous_destination": claims["previous_destination"],
                "resent": bool(claims["resend"]) and not home,
            },
        )
    )


def apply_note(document: VerifiedMessage, context: InboxContext, *, rules: FollowRules) -> None:
    """A free-text note from the destination of a case we reported first, on one of its status updates.

    Raises (before any write): WrongRecipientError, UnknownCaseError.
    """
    claims = document.claims
    if claims["aud"] != context.member_id:
        raise WrongRecipientError(f"note is addressed to {claims['aud']!r}")
    author = document.author.member_id
    # The status it annotates came from the case's destination of the time (a ``moved`` status's author
    # is no longer the destination when its note arrives).
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
