"""Reports from abroad: store them by location, acknowledge to the origin, send what happens back.

A report routed to us is checked before anything is stored: it was routed by the exchange, its URL is
the one its routing header fingerprinted (``fingerprint_mismatch`` otherwise: the exchange routed on a
claim only we can check), and it is hosted in a country we cover, or we are the network's fallback, or
it is a later report of a location we already handle. Reports of one location collapse into one case,
with every reporter kept; each gets its own signed receipt, which is what confirms it at the exchange.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from federation.canonical import canonicalize_url, url_fingerprint
from federation.delivery import Outbox
from federation.errors import ProtocolError
from federation.inbox import InboxContext, WrongRecipientError
from federation.messages import CASE_STATUSES, NOTE, RECEIPT, REPORT, STATUS, format_timestamp, queue_priority
from federation.signing import Signer, VerifiedMessage
from federation.timestamps import parse_timestamp
from node.directory.services import DirectoryCache
from node.hosting.services import HostingTools, Trace, trace
from node.received.models import CaseEvent, InboundCase, InboundReport
from node.removal.models import Watch
from node.removal.schedule import follow_status, new_watch, watch_of
from service.database import DBSession


class FingerprintMismatchError(ProtocolError):
    status = 422
    code = "fingerprint_mismatch"


class NotCoveredError(ProtocolError):
    status = 422
    code = "not_covered"


class UnknownCaseError(ProtocolError):
    status = 404
    code = "unknown_case"


class StatusInputError(ProtocolError):
    status = 422
    code = "invalid_status"


class NotFromExchangeError(ProtocolError):
    status = 403
    code = "not_from_exchange"


@dataclass(frozen=True)
class InboundRules:
    """What a node needs to accept reports routed to it."""

    signer: Signer
    exchange_id: str
    directory: DirectoryCache


class _Opened:
    """A case this transaction opens: its row, written with the batch's other rows at the end. Tracking two
    new ORM objects per report cost the receiving node's network process 560-583 µs of CPU per report
    end to end; written as rows, 460-465 µs (issue 11). It answers like an :class:`InboundCase` for what
    later documents of the same batch change."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row

    @property
    def id(self) -> str:
        return str(self.row["id"])

    @property
    def priority(self) -> str:
        return str(self.row["priority"])

    @priority.setter
    def priority(self, value: str) -> None:
        self.row["priority"] = value

    @property
    def same_material(self) -> list[dict[str, object]]:
        found: list[dict[str, object]] = self.row["same_material"]
        return found

    @same_material.setter
    def same_material(self, value: list[dict[str, object]]) -> None:
        self.row["same_material"] = value


def _case_for(context: InboxContext, fingerprint: str) -> InboundCase | _Opened | None:
    """Our case at this location: one opened earlier, or in this same transaction."""
    opened: dict[str, _Opened] = context.cache.setdefault("inbound_cases", {})
    if fingerprint in opened:
        return opened[fingerprint]
    known: dict[str, InboundCase] | None = context.cache.get("known_cases")
    if known is None:
        # Every location the transaction's reports name, in one query (the objects kept for the batch).
        reports = [item.claims for item in context.documents if item.typ == REPORT]
        wanted = list({claims["header"]["url_fingerprint"] for claims in reports} | {fingerprint})
        query = select(InboundCase).where(InboundCase.url_fingerprint.in_(wanted))
        known = context.cache["known_cases"] = {}
        for case in context.session.scalars(query):
            known.setdefault(case.url_fingerprint, case)
    return known.get(fingerprint)


TRACE_KEPT = dt.timedelta(hours=24)
"""How long a received case's hosting trace is used before the next look at it asks the resolver again."""


def hosting_trace(
    case: InboundCase, hosting: HostingTools, *, now: dt.datetime, again: bool = False
) -> tuple[Trace, bool]:
    """The trace of where a received case's address is hosted, and whether it was made just now.

    The one kept on the case while it is younger than :data:`TRACE_KEPT` (unless ``again``): a notice
    page, its contact suggestions and an escalation look at it often, and each trace asks the resolver
    about the reported host (slow when DNS is, and seen by the host's name servers). Otherwise a new
    trace, kept on the case; the caller commits.
    """
    if not again and case.trace is not None and case.traced_at is not None and now - case.traced_at < TRACE_KEPT:
        return Trace.from_json(case.trace), False
    traced = trace(canonicalize_url(case.url), hosting, now=now)
    case.trace, case.traced_at = traced.to_json(), now
    return traced, True


def accept_report(document: VerifiedMessage, context: InboxContext, *, rules: InboundRules) -> None:
    """Store a report routed to us, under its location's case, and queue our signed receipt for its origin.

    Raises (before any write): WrongRecipientError, FingerprintMismatchError, NotCoveredError,
    DirectoryUnavailableError.
    """
    claims = document.claims
    if claims["aud"] != rules.exchange_id:
        raise WrongRecipientError(f"report is addressed to {claims['aud']!r}, not routed by the exchange")
    header, body = claims["header"], claims["body"]
    # The exchange routed on the header; check the origin's header says the same as its body.
    if url_fingerprint(body["url"]) != header["url_fingerprint"]:
        raise FingerprintMismatchError("url_fingerprint does not match the canonical form of body.url")
    case = _case_for(context, header["url_fingerprint"])
    if case is None and header["hosting_country"] not in rules.signer.identity.countries:
        # Not ours by certificate: the exchange may still route it here (the fallback, or an override).
        directory = rules.directory.current(context.session)
        if rules.signer.member_id not in (directory.fallback, directory.overrides.get(header["hosting_country"])):
            rules.directory.require_fresh(
                context.session,
                f"a report of content hosted in {header['hosting_country']}",
                version=context.envelope.get("directory"),
            )
            raise NotCoveredError(
                f"this hotline does not cover {header['hosting_country']}, is not the fallback and has no override"
            )
    now = context.now
    origin = document.author.member_id
    common = {
        "origin": origin,
        "url": body["url"],
        "hosting_country": header["hosting_country"],
        "legal_status": header["legal_status"],
        "priority": header["priority"],
        "content_hashes": header["content_hashes"],
        "details": {key: value for key, value in body.items() if key != "url"},
        "confirmed_at": parse_timestamp(header["confirmed_at"]),
        "received_at": now,
    }
    if case is None:
        # A report sent again after its content moved keeps the case's id (and its first-report time).
        row = context.inserts.add(
            InboundCase,
            id=header.get("case_id", claims["jti"]),
            url_fingerprint=header["url_fingerprint"],
            status="received",
            same_material=[],
            **common,
        )
        case = context.cache.setdefault("inbound_cases", {})[header["url_fingerprint"]] = _Opened(row)
        context.inserts.add(Watch, **new_watch(case.id, status="received", now=now))  # Checked from now on.
    elif header["priority"] == "urgent":
        case.priority = "urgent"  # A later urgent report makes the case urgent here too.
    context.inserts.add(InboundReport, id=claims["jti"], case_id=case.id, **common)
    receipt = rules.signer.claims(origin, now=now, report_id=claims["jti"], received_at=format_timestamp(now))
    context.outbox.enqueue(
        rules.exchange_id,
        typ=RECEIPT,
        token=rules.signer.sign_compact(RECEIPT, receipt),
        doc_id=receipt["jti"],
        author=rules.signer.member_id,
        priority=queue_priority(header["priority"]),
        now=now,
    )


def apply_material(document: VerifiedMessage, context: InboxContext, *, rules: InboundRules) -> None:
    """The exchange tells us the content of one of our cases is already known elsewhere, and how it was assessed."""
    claims = document.claims
    if document.author.member_id != rules.exchange_id:
        raise NotFromExchangeError("only the exchange links cases as the same material")
    if claims["aud"] != context.member_id:
        raise WrongRecipientError(f"notice is addressed to {claims['aud']!r}")
    opened: dict[str, _Opened] = context.cache.get("inbound_cases", {})
    case: InboundCase | _Opened | None = next((c for c in opened.values() if c.id == claims["case_id"]), None)
    if case is None:
        case = context.session.get(InboundCase, claims["case_id"])
    if case is None:
        raise UnknownCaseError(f"no case {claims['case_id']} was received here")
    known = {link["case_id"] for link in case.same_material}
    case.same_material = [*case.same_material, *(link for link in claims["links"] if link["case_id"] not in known)]


def record_status(
    session: DBSession,
    *,
    signer: Signer,
    outbox: Outbox,
    exchange_id: str,
    case_id: str,
    unverified_input: Any,
    now: dt.datetime,
    directory: DirectoryCache | None = None,
) -> CaseEvent:
    """An analyst here records what happened to a case we received; it goes back through the exchange.

    The status code goes to every hotline that reported the location; a note goes to the case's origin
    alone, as a separate signed document. ``moved`` names the country the content moved to
    (``moved_to``): the exchange re-routes the case there, and this hotline's part in it ends. With a
    ``directory``, a country nobody covers (and no fallback) is refused here, before anything is sent.
    """
    case = session.get(InboundCase, case_id)
    if case is None:
        raise UnknownCaseError(f"no case {case_id} was received here")
    if not isinstance(unverified_input, dict) or unverified_input.get("status") not in CASE_STATUSES:
        raise StatusInputError(f"status must be one of {', '.join(CASE_STATUSES)}")
    note = unverified_input.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 2000):
        raise StatusInputError("note must be a string of at most 2000 characters")
    priority = queue_priority(case.priority)
    local = case.origin == signer.member_id  # Opened here for a case of our own: the network never saw it.
    moved = _moved_to(session, case, unverified_input, signer=signer, directory=directory, local=local)
    claims = signer.claims(
        exchange_id,
        now=now,
        case_id=case_id,
        status=unverified_input["status"],
        at=format_timestamp(now),
        **({"moved_to": moved} if moved else {}),
    )
    if not local:
        outbox.enqueue(
            exchange_id,
            typ=STATUS,
            token=signer.sign_compact(STATUS, claims),
            doc_id=claims["jti"],
            author=signer.member_id,
            priority=priority,
            now=now,
        )
    if note and not local:
        note_claims = signer.claims(case.origin, now=now, case_id=case_id, status_id=claims["jti"], note=note)
        outbox.enqueue(
            exchange_id,
            typ=NOTE,
            token=signer.sign_compact(NOTE, note_claims),
            doc_id=note_claims["jti"],
            author=signer.member_id,
            priority=priority,
            now=now,
        )
    event = CaseEvent(
        id=claims["jti"],
        case_id=case_id,
        author=signer.member_id,
        status=claims["status"],
        at=now,
        note=note or None,
        received_at=now,
        extra={"moved_to": moved} if moved else {},
    )
    session.add(event)
    case.status = claims["status"]
    follow_status(session, case_id, case.status, now=now)
    session.flush()
    return event


def _moved_to(
    session: DBSession,
    case: InboundCase,
    unverified_input: dict[str, Any],
    *,
    signer: Signer,
    directory: DirectoryCache | None,
    local: bool,
) -> str | None:
    """The country a ``moved`` status names, checked; None for any other status.

    Raises: StatusInputError.
    """
    country = unverified_input.get("moved_to")
    if unverified_input["status"] != "moved":
        if country is not None:
            raise StatusInputError("moved_to goes only with the status moved")
        return None
    if not isinstance(country, str) or not re.fullmatch(r"[A-Za-z]{2}", country.strip()):
        raise StatusInputError("moved needs moved_to: the two-letter code of the country the content is hosted in now")
    country = country.strip().upper()
    if local:
        raise StatusInputError(
            "this case never left this hotline: change its hosting country on the case and route it from there"
        )
    if country == case.hosting_country:
        raise StatusInputError(f"the case is already hosted in {country}")
    if country in signer.identity.countries:
        raise StatusInputError(f"this hotline covers {country} too: the case stays here; act on it at its new host")
    if directory is not None and directory.current(session).covering(country) is None:
        raise StatusInputError(
            f"no hotline covers {country} and the network has no fallback: the case cannot move there"
        )
    return country


def received_case(session: DBSession, case_id: str) -> InboundCase:
    """The case received here under ``case_id``.

    Raises:
        UnknownCaseError: there is none (404 to a browser or a script).
    """
    found = session.get(InboundCase, case_id) if len(case_id) <= 36 else None
    if found is None:
        raise UnknownCaseError(f"no case {case_id[:36]} was received here")
    return found


def open_here(session: DBSession, *, case: Any, member_id: str, body: dict[str, Any], now: dt.datetime) -> InboundCase:
    """The hosted-here case for one of this hotline's own cases (``node.cases``) that is hosted in a country
    it covers: it is worked like a case received from abroad (notices, removal checks, the police), with
    this hotline as its origin and statuses kept here. A location another hotline already sent here is
    that case."""
    return open_received_here(
        session,
        case_id=case.id,
        url=case.url,
        url_fingerprint=case.url_fingerprint,
        hosting_country=case.hosting_country,
        legal_status=case.legal_status,
        priority=case.priority,
        content_hashes=(case.assessment or {}).get("content_hashes", []),
        details=body,
        confirmed_at=case.first_reported_at,
        member_id=member_id,
        now=now,
    )


def open_received_here(
    session: DBSession,
    *,
    case_id: str,
    url: str,
    url_fingerprint: str,
    hosting_country: str,
    legal_status: str,
    priority: str,
    content_hashes: list[dict[str, str]],
    details: dict[str, Any],
    confirmed_at: dt.datetime,
    member_id: str,
    now: dt.datetime,
) -> InboundCase:
    """A case of this hotline's own, hosted in a country it covers, opened on the received-cases list (or
    the case already there at that location). Also used when content this hotline reported abroad moves
    into its own country (a ``reroute`` notice naming it)."""
    found = session.scalars(select(InboundCase).where(InboundCase.url_fingerprint == url_fingerprint)).first()
    if found is not None:
        return found
    common = {
        "origin": member_id,
        "url": url,
        "hosting_country": hosting_country,
        "legal_status": legal_status,
        "priority": priority,
        "content_hashes": content_hashes,
        "details": details,
        "confirmed_at": confirmed_at,
        "received_at": now,
    }
    opened = InboundCase(id=case_id, url_fingerprint=url_fingerprint, status="assessed", same_material=[], **common)
    session.add(opened)
    session.add(InboundReport(id=case_id, case_id=case_id, **common))
    watch_of(session, case_id, status=opened.status, now=now)  # Its removal checks start now.
    return opened


def case_view(session: DBSession, case: InboundCase) -> dict[str, Any]:
    events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.at))
    reports = session.scalars(
        select(InboundReport).where(InboundReport.case_id == case.id).order_by(InboundReport.received_at)
    )
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
        "same_material": case.same_material,
        "reports": [
            {"id": r.id, "origin": r.origin, "received_at": r.received_at.isoformat(), "priority": r.priority}
            for r in reports
        ],
        "timeline": [{"status": e.status, "at": e.at.isoformat(), "by": e.author, "note": e.note} for e in events],
    }
