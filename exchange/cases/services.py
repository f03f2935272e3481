"""What the exchange does with each document it accepts: route, deduplicate, relay, fan out.

All three handlers run inside the inbox's savepoint for their document, so a refusal leaves nothing
behind. The exchange reads only the routing header of a report; the signed report travels on to the
destination byte for byte, so the destination verifies the origin's own signature.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlalchemy import select, tuple_

from exchange.cases.models import Case, CaseReport, CaseStatus, Fingerprint
from exchange.members.services import require_active
from exchange.routing.services import route
from federation.delivery import PRIORITY_NORMAL, PRIORITY_URGENT
from federation.errors import ProtocolError
from federation.inbox import Handler, InboxContext, MessageIdReusedError, WrongRecipientError
from federation.signing import Signer, VerifiedMessage
from federation.timestamps import parse_timestamp

REPORT = "hotline.report.v1"
RECEIPT = "hotline.receipt.v1"
STATUS = "hotline.status.v1"
DUPLICATE = "hotline.duplicate.v1"


class RelayNotAllowedError(ProtocolError):
    status = 403
    code = "relay_not_allowed"


class UnknownCaseError(ProtocolError):
    status = 404
    code = "unknown_case"


class NotCaseDestinationError(ProtocolError):
    status = 403
    code = "not_case_destination"


def _priority(case: Case | SimpleNamespace) -> int:
    return PRIORITY_URGENT if case.priority == "urgent" else PRIORITY_NORMAL


def _require_direct(document: VerifiedMessage, context: InboxContext) -> str:
    """Members submit their own documents to the exchange; nobody relays another member's."""
    author = document.author.member_id
    if author != context.sender.member_id:
        raise RelayNotAllowedError(f"{context.sender.member_id} may not submit a document written by {author}")
    if document.claims["aud"] != context.member_id and document.typ != RECEIPT:
        raise WrongRecipientError(f"document is addressed to {document.claims['aud']!r}, not to the exchange")
    return author


def _fingerprint_index(context: InboxContext) -> dict[tuple[str, str], str]:
    """Fingerprint → case id for every fingerprint the batch's reports carry: one query per transaction.

    Handlers add the cases they open to it, so a later report of the same batch finds them too.
    """
    index: dict[tuple[str, str], str] | None = context.cache.get("fingerprints")
    if index is None:
        wanted = list(
            {
                pair
                for document in context.documents
                if document.typ == REPORT
                for pair in fingerprints_of(document.claims["header"])
            }
        )
        index = {}
        if wanted:
            query = select(Fingerprint.kind, Fingerprint.value, Fingerprint.case_id).where(
                tuple_(Fingerprint.kind, Fingerprint.value).in_(wanted)
            )
            index = {(kind, value): case_id for kind, value, case_id in context.session.connection().execute(query)}
        context.cache["fingerprints"] = index
    return index


def _lock_case(context: InboxContext, case_id: str) -> None:
    """Serialise the two writers that meet on a case: a duplicate joining it, a status fanned out from it.

    Without this, on PostgreSQL (READ COMMITTED) a status could read the case's followers just before a
    concurrent duplicate joins, while the duplicate reads the statuses just before that status is
    stored: the newcomer would miss it. The row lock makes one wait for the other's commit. SQLite
    already serialises writers (BEGIN IMMEDIATE) and its dialect leaves FOR UPDATE out.
    """
    if case_id in context.cache.setdefault("locked_cases", set()):
        return
    context.session.execute(select(Case.id).where(Case.id == case_id).with_for_update())
    context.cache["locked_cases"].add(case_id)


def _existing_case_ids(context: InboxContext) -> set[str]:
    """Which report ids of this batch already name a case (one query per transaction)."""
    existing: set[str] | None = context.cache.get("case_ids")
    if existing is None:
        ids = [document.claims["jti"] for document in context.documents if document.typ == REPORT]
        query = select(Case.id).where(Case.id.in_(ids))
        existing = set(context.session.connection().execute(query).scalars()) if ids else set()
        context.cache["case_ids"] = existing
    return existing


def fingerprints_of(header: dict) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    pairs = [("url", header["url_fingerprint"])]
    pairs += [(item["alg"], item["value"]) for item in header["content_hashes"]]
    return pairs


class CaseHandlers:
    """The exchange's document handlers, bound to the exchange's signer (for duplicate notices)."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer

    def handlers(self) -> dict[str, Handler]:
        return {REPORT: self.report, RECEIPT: self.receipt, STATUS: self.status}

    def report(self, document: VerifiedMessage, context: InboxContext) -> None:
        origin = _require_direct(document, context)
        session, now = context.session, context.now
        require_active(session, origin)
        claims = document.claims
        header = claims["header"]
        fingerprints = fingerprints_of(header)
        known = _fingerprint_index(context)
        matches = [(kind, value, known[(kind, value)]) for kind, value in fingerprints if (kind, value) in known]
        if matches:
            self._link_duplicate(document, context, matches, fingerprints)
            return
        if claims["jti"] in _existing_case_ids(context):
            raise MessageIdReusedError(f"a case with id {claims['jti']} already exists: report ids must be new")
        destination = route(session, hosting_country=header["hosting_country"], origin=origin, cache=context.cache)
        values = {
            "id": claims["jti"],
            "origin": origin,
            "destination": destination.id,
            "hosting_country": header["hosting_country"],
            "legal_status": header["legal_status"],
            "priority": header["priority"],
            "confirmed_at": parse_timestamp(header["confirmed_at"]),
            "created_at": now,
            "status": "routed",
        }
        context.inserts.add(Case, **values)
        case = SimpleNamespace(**values)
        context.cache.setdefault("cases", {})[case.id] = case
        _existing_case_ids(context).add(case.id)
        context.inserts.add(
            CaseReport,
            report_id=claims["jti"],
            member=origin,
            case_id=case.id,
            duplicate=False,
            matched_on=None,
            received_at=now,
        )
        for kind, value in fingerprints:
            context.inserts.add(Fingerprint, kind=kind, value=value, case_id=case.id)
            known[(kind, value)] = case.id
        context.outbox.enqueue(
            destination.id, typ=REPORT, token=document.token, doc_id=claims["jti"], priority=_priority(case), now=now
        )

    def _link_duplicate(
        self,
        document: VerifiedMessage,
        context: InboxContext,
        matches: list[tuple[str, str, str]],
        fingerprints: list[tuple[str, str]],
    ) -> None:
        session, now, claims = context.session, context.now, document.claims
        origin = document.author.member_id
        # The oldest matching case wins, so a report matching two cases joins the one opened first.
        batch_cases: dict[str, Any] = context.cache.setdefault("cases", {})
        cases = [batch_cases.get(case_id) or session.get(Case, case_id) for case_id in {c for _, _, c in matches}]
        case = min((c for c in cases if c is not None), key=lambda c: (c.created_at, c.id))
        _lock_case(context, case.id)
        matched_on = sorted(
            {"url" if kind == "url" else "content_hash" for kind, _, case_id in matches if case_id == case.id}
        )
        context.inserts.add(
            CaseReport,
            report_id=claims["jti"],
            member=origin,
            case_id=case.id,
            duplicate=True,
            matched_on=",".join(matched_on),
            received_at=now,
        )
        # New fingerprints the duplicate brings (another hash of the same file) join the case.
        known = _fingerprint_index(context)
        for kind, value in fingerprints:
            if (kind, value) not in known:
                context.inserts.add(Fingerprint, kind=kind, value=value, case_id=case.id)
                known[(kind, value)] = case.id
        notice = self.signer.claims(
            origin,
            now=now,
            report_id=claims["jti"],
            case_id=case.id,
            matched_on=matched_on,
            destination=case.destination,
        )
        token = self.signer.sign_compact(DUPLICATE, notice)
        context.outbox.enqueue(
            origin, typ=DUPLICATE, token=token, doc_id=notice["jti"], priority=_priority(case), now=now
        )
        # The newcomer hears everything the case has heard so far, in order.
        for status in session.scalars(select(CaseStatus).where(CaseStatus.case_id == case.id).order_by(CaseStatus.id)):
            context.outbox.enqueue(
                origin, typ=STATUS, token=status.token, doc_id=status.doc_id, priority=_priority(case), now=now
            )

    def receipt(self, document: VerifiedMessage, context: InboxContext) -> None:
        author = _require_direct(document, context)
        session, claims = context.session, document.claims
        link = session.scalar(
            select(CaseReport).where(CaseReport.report_id == claims["report_id"], CaseReport.duplicate.is_(False))
        )
        if link is None:
            raise UnknownCaseError(f"no case was opened by report {claims['report_id']}")
        case = session.get(Case, link.case_id)
        if case is None:  # A fingerprint or link without its case would be a broken database.
            raise UnknownCaseError(f"no case {link.case_id}")
        if case.destination != author:
            raise NotCaseDestinationError(f"{author} is not the destination of case {case.id}")
        if claims["aud"] != case.origin:
            raise WrongRecipientError(f"the receipt must be addressed to the origin {case.origin}")
        received_at = parse_timestamp(claims["received_at"])  # Checked on every receipt it relays.
        if case.received_at is None:
            case.received_at = received_at
            if case.status == "routed":
                case.status, case.status_at = "received", case.received_at
        context.outbox.enqueue(
            case.origin,
            typ=RECEIPT,
            token=document.token,
            doc_id=claims["jti"],
            priority=_priority(case),
            now=context.now,
        )

    def status(self, document: VerifiedMessage, context: InboxContext) -> None:
        author = _require_direct(document, context)
        session, now, claims = context.session, context.now, document.claims
        case = session.get(Case, claims["case_id"])
        if case is None:
            raise UnknownCaseError(f"no case {claims['case_id']}")
        _lock_case(context, case.id)
        if case.destination != author:
            raise NotCaseDestinationError(f"{author} is not the destination of case {case.id}")
        at = parse_timestamp(claims["at"])
        context.inserts.add(
            CaseStatus,
            case_id=case.id,
            doc_id=claims["jti"],
            status=claims["status"],
            at=at,
            received_at=now,
            token=document.token,
        )
        case.status, case.status_at = claims["status"], at
        milestone = {"ntd_sent": "ntd_sent_at", "police_notified": "police_notified_at", "removed": "removed_at"}
        if claims["status"] in milestone and getattr(case, milestone[claims["status"]]) is None:
            setattr(case, milestone[claims["status"]], at)
        subscribers = set(session.scalars(select(CaseReport.member).where(CaseReport.case_id == case.id)))
        for member in sorted(subscribers - {author}):
            context.outbox.enqueue(
                member, typ=STATUS, token=document.token, doc_id=claims["jti"], priority=_priority(case), now=now
            )
