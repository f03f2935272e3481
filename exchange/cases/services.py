"""What the exchange does with each document it accepts: route, deduplicate by location, relay, fan out.

How a case comes and goes (docs/protocol.md, "Cases, duplicates and same material"):

1. **Routing first.** A report is routed by its own header before anything the exchange knows is
   consulted, so that whether a report is accepted never tells its origin what other members reported.
2. **A case is a location.** A report whose URL fingerprint is the location of a live case joins that
   case as a duplicate; any other report opens a new case (id = the report id) and is sent to the member
   of its hosting country. Content hashes never join cases: a report of a different URL whose hashes
   match confirmed cases is a new case, linked to them as *same material*, and its destination is told
   how that material was assessed (a ``material`` notice).
3. **Provisional until confirmed.** The exchange cannot check a fingerprint against a URL; only the
   destination can. A case stays provisional until the destination's signed receipt for the report that
   opened it. Duplicates of a provisional case are held (with their signed report). On the receipt the
   case is confirmed, its content hashes start to match, and the held duplicates go to the destination.
4. **Duplicates are verified too.** A duplicate is forwarded to the case's destination, which checks it
   and files it under its case (no second analyst). Only on the destination's receipt does the duplicate
   reporter learn about the case (a ``duplicate`` notice, then the case's status history), and only then
   do the hashes it brought join the case. Before that it learns nothing but that its report arrived.
5. **Nothing is swallowed.** When a destination refuses a report, or it cannot be delivered, the outbox
   hands it to :meth:`CaseBook.dead_letter`: a refused opening report rejects its case (its location
   stops matching), the origin receives a signed ``refusal``, and every duplicate held meanwhile is
   routed again as a case of its own. A refused duplicate is refused alone.
6. **Status.** Status codes fan out to the origin and to every verified duplicate reporter; free-text
   notes travel separately and to the origin alone.
7. **Moved content.** A ``moved`` status names the country the content is hosted in now. The case keeps
   its id, its location and its first-report time; the exchange re-points it to the member covering that
   country (provisional again) and sends every follower a signed ``reroute`` notice. The origin answers by
   sending its report again with the case's id in the routing header (the exchange never reads a body,
   so it cannot forward one itself); the new destination's receipt confirms the case there.

Handlers check everything before their first write (the inbox's contract). Rows of a transaction's new
cases go through the inbox's bulk inserts; the batch's own lookups go through ``context.cache``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm.util import identity_key

from audit.services import AuditLog
from exchange.audit.models import AUDIT
from exchange.cases.models import (
    CONFIRMED,
    HELD,
    MOVED,
    OPENED,
    PENDING,
    PROVISIONAL,
    REFUSED,
    REJECTED,
    VERIFIED,
    Case,
    CaseHash,
    CaseReport,
    CaseStatus,
    Location,
    MaterialLink,
)
from exchange.members.services import require_active
from exchange.routing.services import HostedAtOriginError, route, routing_snapshot
from federation.delivery import Outbox
from federation.errors import ProtocolError
from federation.inbox import Handler, InboxContext, MessageIdReusedError, WrongRecipientError
from federation.messages import (
    DUPLICATE,
    MATERIAL,
    NOTE,
    RECEIPT,
    REFUSAL,
    REPORT,
    REROUTE,
    STATUS,
    format_timestamp,
    queue_priority,
)
from federation.signing import Signer, VerifiedMessage
from federation.timestamps import parse_timestamp
from service.database import BulkInserts, DBSession, KeyLookup, Query, pair_params, pairs_in

MAX_MATERIAL_LINKS = 20

# The batch lookups every transaction makes, built once (building one costs more than SQLite's answer).
_LOCATIONS = KeyLookup((Location.url_fingerprint, Location.case_id), Location.url_fingerprint)
_CASE_IDS = KeyLookup((Case.id,), Case.id)
_HASHES = KeyLookup((CaseHash.alg, CaseHash.value, CaseHash.case_id), CaseHash.alg, CaseHash.value)
# What a batch of receipts needs (CaseBook._receipt_links), as plain rows: loading them as ORM objects and
# flushing their changes cost more than everything else the receipt path does.
_IDS: Any = bindparam("ids", expanding=True)
_ROUTED_REPORTS = select(
    CaseReport.report_id,
    CaseReport.member,
    CaseReport.case_id,
    CaseReport.state,
    CaseReport.priority,
    CaseReport.hashes,
).where(pairs_in(CaseReport.report_id, CaseReport.member, "keys"))
_RECEIPT_CASES = (
    select(Case.id, Case.destination, Case.state, Case.confirmed_at)
    .where(Case.id.in_(_IDS))
    .order_by(Case.id)
    .with_for_update()
)
_HELD_REPORTS = (
    select(*_ROUTED_REPORTS.selected_columns, CaseReport.token)
    .where(CaseReport.case_id.in_(_IDS), CaseReport.state == HELD)
    .order_by(CaseReport.received_at, CaseReport.report_id)
)
_REPORTS, _CASES = CaseReport.__table__, Case.__table__
_SETTLE_REPORT = Query(
    update(_REPORTS)
    .where(_REPORTS.c.report_id == bindparam("report"), _REPORTS.c.member == bindparam("reporter"))
    .values(state=bindparam("new_state"), settled_at=bindparam("at", type_=_REPORTS.c.settled_at.type))
)
_RELEASE_HELD = Query(
    update(_REPORTS)
    .where(_REPORTS.c.case_id == bindparam("case"), _REPORTS.c.state == HELD)
    .values(state=PENDING, token=None)
)
_CONFIRM_CASE = Query(
    update(_CASES)
    .where(_CASES.c.id == bindparam("case"))
    .values(state=CONFIRMED, received_at=bindparam("at", type_=_CASES.c.received_at.type))
)
_ATTACHED_HASHES = select(CaseHash.case_id, CaseHash.alg, CaseHash.value).where(
    pairs_in(CaseHash.alg, CaseHash.value, "brought"), CaseHash.case_id.in_(_IDS)
)
_CODE = re.compile(r"[a-z_]{1,64}")


class RelayNotAllowedError(ProtocolError):
    status = 403
    code = "relay_not_allowed"


class UnknownCaseError(ProtocolError):
    status = 404
    code = "unknown_case"


class NotCaseDestinationError(ProtocolError):
    status = 403
    code = "not_case_destination"


class UnexpectedReceiptError(ProtocolError):
    status = 409
    code = "unexpected_receipt"


class CaseNotConfirmedError(ProtocolError):
    status = 409
    code = "case_not_confirmed"


class StatusTimeError(ProtocolError):
    status = 422
    code = "status_time_invalid"


class NotMovedError(ProtocolError):
    status = 422
    code = "not_moved"


class NotCaseOriginError(ProtocolError):
    status = 403
    code = "not_case_origin"


class RequeueError(ProtocolError):
    status = 409
    code = "cannot_requeue"


class UnexpectedResendError(ProtocolError):
    status = 409
    code = "unexpected_resend"


def _require_direct(document: VerifiedMessage, context: InboxContext) -> str:
    """Members submit their own documents to the exchange; nobody relays another member's."""
    author = document.author.member_id
    if author != context.sender.member_id:
        raise RelayNotAllowedError(f"{context.sender.member_id} may not submit a document written by {author}")
    if document.claims["aud"] != context.member_id and document.typ not in (RECEIPT, NOTE):
        raise WrongRecipientError(f"document is addressed to {document.claims['aud']!r}, not to the exchange")
    return author


def _claims_of(token: str) -> dict[str, Any]:
    """The payload of a token this exchange verified when it received it (held duplicates)."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


@dataclass
class CaseBook:
    """The exchange's case rules, applied inside one unit of work.

    Used by the inbox handlers (with the transaction's bulk inserts and batch cache) and by the outbox's
    dead-letter hook (with plain ORM writes).
    """

    session: DBSession
    signer: Signer
    outbox: Outbox
    now: dt.datetime
    inserts: BulkInserts | None = None
    audit: AuditLog | None = None
    """Where each routing decision is recorded (collected, and appended once per transaction)."""
    cache: dict[str, Any] = field(default_factory=dict)
    batch_reports: list[dict[str, Any]] = field(default_factory=list)
    """The claims of every report in the transaction, so lookups can be made once per batch."""
    batch_receipts: list[dict[str, Any]] = field(default_factory=list)
    """The claims of every receipt in the transaction (the same, for the receipt path)."""

    # Writing ---------------------------------------------------------------------------------------

    def _add(self, model: Any, **values: Any) -> Any:
        """Queue a row (a dict until the batch's bulk insert), or add an object to the session."""
        if self.inserts is not None:
            return self.inserts.add(model, **values)
        added = model(**values)
        self.session.add(added)
        return added

    def _send(self, destination: str, typ: str, token: str, doc_id: str, author: str, priority: str) -> None:
        self.outbox.enqueue(
            destination,
            typ=typ,
            token=token,
            doc_id=doc_id,
            author=author,
            priority=queue_priority(priority),
            now=self.now,
        )

    def _notify(self, member: str, typ: str, priority: str, **fields: Any) -> None:
        """Sign a notice by the exchange to ``member`` and queue it."""
        claims = self.signer.claims(member, now=self.now, **fields)
        self._send(member, typ, self.signer.sign_compact(typ, claims), claims["jti"], self.signer.member_id, priority)

    def _record(self, actor: str, action: str, object_id: str, **detail: Any) -> None:
        if self.audit is not None:
            self.audit.defer(actor, action, "case", object_id, now=self.now, **detail)

    # Batch lookups ---------------------------------------------------------------------------------

    def _locations(self) -> dict[str, str]:
        """URL fingerprint → live case id, for every report of the batch (one query per transaction)."""
        index: dict[str, str] | None = self.cache.get("locations")
        if index is None:
            wanted = list({claims["header"]["url_fingerprint"] for claims in self.batch_reports})
            index = {}
            if wanted:
                index = dict(_LOCATIONS(self.session.connection(), wanted))
            self.cache["locations"] = index
        return index

    def _hash_matches(self) -> dict[tuple[str, str], list[str]]:
        """(alg, value) → confirmed case ids holding it, for every hash of the batch (one query)."""
        index: dict[tuple[str, str], list[str]] | None = self.cache.get("hashes")
        if index is None:
            wanted = list(
                {
                    (item["alg"], item["value"])
                    for claims in self.batch_reports
                    for item in claims["header"]["content_hashes"]
                }
            )
            index = {}
            if wanted:
                for alg, value, case_id in _HASHES(self.session.connection(), wanted):
                    index.setdefault((alg, value), []).append(case_id)
            self.cache["hashes"] = index
        return index

    def _existing_case_ids(self) -> set[str]:
        existing: set[str] | None = self.cache.get("case_ids")
        if existing is None:
            ids = [claims["jti"] for claims in self.batch_reports]
            existing = {case_id for (case_id,) in _CASE_IDS(self.session.connection(), ids)} if ids else set()
            self.cache["case_ids"] = existing
        return existing

    def _receipt_links(self) -> _Receipts:
        """Load, once per transaction, what every receipt of the batch needs (four queries in all).

        Each receipt's routed report, its case (locked, in id order so two transactions never wait on
        each other crosswise), the reports held on those cases and the hashes the cases already carry:
        plain rows (or an object's unflushed values, :meth:`_current`), which the receipt path changes with
        Core statements.
        """
        found: _Receipts | None = self.cache.get("receipts")
        if found is not None:
            return found
        connection = self.session.connection()
        keys = list({(claims["report_id"], claims["aud"]) for claims in self.batch_receipts})
        found = self.cache["receipts"] = _Receipts()
        for routed in connection.execute(_ROUTED_REPORTS, pair_params("keys", keys)):
            found.reports[(routed.report_id, routed.member)] = self._current(
                CaseReport, (routed.report_id, routed.member), _Routed(*routed)
            )
        ordered = sorted({link.case_id for link in found.reports.values()})
        if not ordered:
            return found
        for case in connection.execute(_RECEIPT_CASES, {"ids": ordered}):
            found.cases[case.id] = self._current(Case, case.id, _Receipted(*case))
            found.held[case.id] = []
        self.cache.setdefault("locked", set()).update(ordered)
        for held in connection.execute(_HELD_REPORTS, {"ids": ordered}):
            found.held[held.case_id].append(
                _Routed(held.report_id, held.member, held.case_id, held.state, held.priority, held.hashes, held.token)
            )
        attached: dict[str, set[tuple[str, str]]] = self.cache.setdefault("attached_hashes", {})
        for case_id in ordered:
            attached.setdefault(case_id, set())
        # By the hashes the receipts' reports bring (the primary key's order), not by case: case_hashes has
        # no index on case_id alone.
        brought = {(alg, value) for link in found.reports.values() if link.hashes for alg, value in link.hashes}
        if brought:
            parameters = {**pair_params("brought", brought), "ids": ordered}
            for case_id, alg, value in connection.execute(_ATTACHED_HASHES, parameters):
                attached[case_id].add((alg, value))
        return found

    def _current(self, model: Any, key: Any, facts: Any) -> Any:
        """``facts`` read with Core, or the values of the object the session holds for that row: a document
        earlier in the batch may have changed it (a ``moved`` status settles the case's opening report),
        and those changes are written only at the batch's end. The session holds an object only while
        something refers to it (its map is weak), which for these rows means a change made earlier in the
        batch; the only such change, a move, makes the receipt refuse before it writes, so no object is
        left stale by the statements that follow."""
        held = self.session.identity_map.get(identity_key(model, key))
        if held is not None:
            for name in (item.name for item in fields(facts)):
                setattr(facts, name, getattr(held, name))
        return facts

    def _case(self, case_id: str, *, lock: bool = False) -> Any:
        """The case (from this batch if it opened here, else from the database, locked if asked)."""
        opened_here: dict[str, Any] = self.cache.setdefault("opened", {})
        if case_id in opened_here:
            return opened_here[case_id]
        if lock:
            self._lock(case_id)
        case = self.session.get(Case, case_id)
        if case is None:  # A location or link without its case would be a broken database.
            raise UnknownCaseError(f"no case {case_id}")
        return case

    def _lock(self, case_id: str) -> None:
        """Serialise the writers that meet on a case: duplicates joining it, its receipt, its statuses.

        Without this, on PostgreSQL (READ COMMITTED) a duplicate could be held just after the receipt that
        confirms the case had looked for held duplicates, and wait for ever. The row lock makes one wait for
        the other's commit. SQLite already serialises writers (BEGIN IMMEDIATE); its dialect leaves FOR
        UPDATE out.
        """
        locked: set[str] = self.cache.setdefault("locked", set())
        if case_id not in locked:
            self.session.execute(select(Case.id).where(Case.id == case_id).with_for_update())
            locked.add(case_id)

    # Reports ---------------------------------------------------------------------------------------

    def require_active(self, member_id: str) -> None:
        """Pass if ``member_id`` may send now, from the batch's snapshot of active members (read once).

        Raises:
            UnknownMemberError, MemberSuspendedError.
        """
        members, _ = routing_snapshot(self.session, cache=self.cache, now=self.now)
        if not any(member.id == member_id for member in members):
            require_active(self.session, member_id)  # Says which: unknown, or suspended.

    def take_report(self, claims: dict[str, Any], token: str, origin: str) -> None:
        """Route a verified report: open a case, or join the live case at its location.

        Raises (before any write):
            NoRouteError, HostedAtOriginError, MessageIdReusedError.
        """
        header = claims["header"]
        if "case_id" in header:
            self._take_resend(claims, token, origin)
            return
        # 1. Routing first: the answer depends on the header alone, not on what the exchange knows.
        destination = route(
            self.session, hosting_country=header["hosting_country"], origin=origin, cache=self.cache, now=self.now
        )
        case_id = self._locations().get(header["url_fingerprint"])
        if case_id is not None:
            self._join(self._case(case_id, lock=True), claims, token, origin)
            return
        if claims["jti"] in self._existing_case_ids():
            raise MessageIdReusedError(f"a case with id {claims['jti']} already exists: report ids must be new")
        self._open(claims, token, origin, destination.id)

    def _take_resend(self, claims: dict[str, Any], token: str, origin: str) -> None:
        """The origin of a case whose content moved sends its report again: it goes to the new destination.

        Raises (before any write): UnknownCaseError, NotCaseOriginError, UnexpectedResendError,
        MessageIdReusedError.
        """
        header = claims["header"]
        case = self.session.get(Case, header["case_id"])
        if case is None:
            raise UnknownCaseError(f"no case {header['case_id']}")
        self._lock(case.id)
        if case.origin != origin:
            raise NotCaseOriginError(f"only {case.origin}, the case's origin, sends case {case.id} again")
        if case.moved_at is None or case.state != PROVISIONAL or case.destination == origin:
            raise UnexpectedResendError(f"case {case.id} is not waiting for its report after a move")
        if header["url_fingerprint"] != case.url_fingerprint or header["hosting_country"] != case.hosting_country:
            raise UnexpectedResendError(
                f"case {case.id} is at the same location, now hosted in {case.hosting_country}: the header must say so"
            )
        opened = self.session.scalar(
            select(CaseReport.report_id).where(CaseReport.case_id == case.id, CaseReport.state == OPENED)
        )
        if opened is not None:
            raise UnexpectedResendError(f"case {case.id} was already sent again, as report {opened}")
        if self.session.get(CaseReport, (claims["jti"], origin)) is not None:
            raise MessageIdReusedError(f"report {claims['jti']} was already routed: report ids must be new")
        self._add_report(claims, origin, case.id, duplicate=False, state=OPENED)
        self._send(case.destination, REPORT, token, claims["jti"], origin, header["priority"])
        self._record(f"member:{origin}", "case.resend", case.id, report_id=claims["jti"], destination=case.destination)

    def _open(self, claims: dict[str, Any], token: str, origin: str, destination: str) -> None:
        header = claims["header"]
        case_id = claims["jti"]
        values = {
            "id": case_id,
            "url_fingerprint": header["url_fingerprint"],
            "origin": origin,
            "destination": destination,
            "hosting_country": header["hosting_country"],
            "legal_status": header["legal_status"],
            "priority": header["priority"],
            "state": PROVISIONAL,
            "confirmed_at": parse_timestamp(header["confirmed_at"]),
            "created_at": self.now,
        }
        self._add(Case, **values)
        self._add(Location, url_fingerprint=header["url_fingerprint"], case_id=case_id)
        self._add_report(claims, origin, case_id, duplicate=False, state=OPENED)
        self.cache.setdefault("opened", {})[case_id] = _Pending(**values, status=None)
        self._locations()[header["url_fingerprint"]] = case_id
        self._existing_case_ids().add(case_id)
        self._send(destination, REPORT, token, case_id, origin, header["priority"])
        links = self._same_material(case_id, header["content_hashes"])
        if links:
            self._notify(destination, MATERIAL, header["priority"], case_id=case_id, links=links)
        self._record(
            f"member:{origin}",
            "case.open",
            case_id,
            destination=destination,
            hosting_country=header["hosting_country"],
            priority=header["priority"],
            same_material=[link["case_id"] for link in links],
        )

    def _add_report(
        self,
        claims: dict[str, Any],
        origin: str,
        case_id: str,
        *,
        duplicate: bool,
        state: str,
        token: str | None = None,
    ) -> Any:
        header = claims["header"]
        return self._add(
            CaseReport,
            report_id=claims["jti"],
            member=origin,
            case_id=case_id,
            duplicate=duplicate,
            state=state,
            received_at=self.now,
            hosting_country=header["hosting_country"],
            priority=header["priority"],
            hashes=[[item["alg"], item["value"]] for item in header["content_hashes"]],
            token=token,
        )

    def _same_material(self, case_id: str, content_hashes: list[dict[str, str]]) -> list[dict[str, Any]]:
        """Link a new case to the confirmed cases that share a content hash; return the notice's links."""
        matches = self._hash_matches()
        matched: dict[str, list[str]] = {}
        for item in content_hashes:
            for other in matches.get((item["alg"], item["value"]), []):
                if other != case_id and item["alg"] not in matched.setdefault(other, []):
                    matched[other].append(item["alg"])
        if not matched:
            return []
        known = {
            case.id: case
            for case in self.session.scalars(select(Case).where(Case.id.in_(list(matched)), Case.state == CONFIRMED))
        }
        earliest = sorted(known.values(), key=lambda case: (case.confirmed_at, case.id))[:MAX_MATERIAL_LINKS]
        links = []
        for other in earliest:
            algs = sorted(matched[other.id])
            self._add(MaterialLink, case_id=case_id, linked_case_id=other.id, matched_on=algs, created_at=self.now)
            links.append(
                {
                    "case_id": other.id,
                    "matched_on": algs,
                    "legal_status": other.legal_status,
                    "hosting_country": other.hosting_country,
                    "first_reported_at": format_timestamp(other.confirmed_at),
                    "status": other.status,
                }
            )
        return links

    def _join(self, case: Any, claims: dict[str, Any], token: str, origin: str) -> None:
        """A report of a live case's location: hold it (provisional case) or send it to be verified."""
        if case.state == PROVISIONAL:
            held = self._add_report(claims, origin, case.id, duplicate=True, state=HELD, token=token)
            if isinstance(held, dict):  # Not stored before the batch's end: a receipt later in it finds it here.
                self.cache.setdefault("held_here", {}).setdefault(case.id, []).append(held)
            self._record(f"member:{origin}", "case.duplicate_held", case.id, report_id=claims["jti"])
            return
        self._add_report(claims, origin, case.id, duplicate=True, state=PENDING)
        self._send(case.destination, REPORT, token, claims["jti"], origin, claims["header"]["priority"])
        self._record(
            f"member:{origin}", "case.duplicate_sent", case.id, report_id=claims["jti"], destination=case.destination
        )

    # Receipts --------------------------------------------------------------------------------------

    def take_receipt(self, claims: dict[str, Any], token: str, author: str) -> None:
        """The destination stored a report: confirm its case, or verify a duplicate; relay to the reporter.

        Raises (before any write): UnknownCaseError, NotCaseDestinationError, UnexpectedReceiptError.
        """
        receipts = self._receipt_links()
        link = receipts.reports.get((claims["report_id"], claims["aud"]))
        if link is None:
            raise UnknownCaseError(f"no report {claims['report_id']} from {claims['aud']} was routed here")
        case = receipts.cases.get(link.case_id)
        if case is None:  # A report without its case would be a broken database.
            raise UnknownCaseError(f"no case {link.case_id}")
        if case.destination != author:
            raise NotCaseDestinationError(f"{author} is not the destination of case {case.id}")
        received_at = parse_timestamp(claims["received_at"])
        if link.state == OPENED and case.state == REJECTED:
            raise UnexpectedReceiptError(f"case {case.id} was rejected; its receipt comes too late")
        if link.state not in (OPENED, PENDING, VERIFIED):
            raise UnexpectedReceiptError(f"report {link.report_id} was not sent to {author}")
        newly_verified = link.state == PENDING
        if link.state == OPENED and case.state == PROVISIONAL:
            self._confirm(case, link, received_at, receipts.held.pop(case.id, []))
        elif newly_verified:
            self._verify_duplicate(case, link)
        # The duplicate notice goes first, then the receipt, then the history: a node accepts a receipt
        # only from the destination it was told of.
        self._send(link.member, RECEIPT, token, claims["jti"], author, link.priority)
        if newly_verified:
            self._send_history(case, link.member, link.priority)

    def _settle(self, link: _Routed, state: str) -> None:
        connection = self.session.connection()
        values = {"report": link.report_id, "reporter": link.member, "new_state": state, "at": self.now}
        _SETTLE_REPORT.run(connection, values)
        link.state = state

    def _confirm(self, case: _Receipted, link: _Routed, received_at: dt.datetime, held: list[_Routed]) -> None:
        connection = self.session.connection()
        _CONFIRM_CASE.run(connection, {"case": case.id, "at": received_at})
        case.state = CONFIRMED
        self._record(f"member:{case.destination}", "case.confirm", case.id)
        self._attach_hashes(case.id, link)
        self._settle(link, OPENED)  # Settled, and still the report that opened the case.
        # The duplicates held meanwhile go to the destination: those stored (loaded with the batch's
        # receipts), then those held by reports earlier in this batch (rows not inserted yet).
        if held:
            _RELEASE_HELD.run(connection, {"case": case.id})
        for duplicate in held:
            if duplicate.token is not None:
                self._send(
                    case.destination, REPORT, duplicate.token, duplicate.report_id, duplicate.member, duplicate.priority
                )
        for row in self.cache.get("held_here", {}).pop(case.id, []):
            self._send(case.destination, REPORT, row["token"], row["report_id"], row["member"], row["priority"])
            row.update(state=PENDING, token=None)

    def _verify_duplicate(self, case: _Receipted, link: _Routed) -> None:
        self._settle(link, VERIFIED)
        self._record(f"member:{case.destination}", "case.duplicate_verified", case.id, report_id=link.report_id)
        self._attach_hashes(case.id, link)
        self._notify(
            link.member,
            DUPLICATE,
            link.priority,
            report_id=link.report_id,
            case_id=case.id,
            matched_on=["url"],
            destination=case.destination,
            first_reported_at=format_timestamp(case.confirmed_at),
        )

    def _attach_hashes(self, case_id: str, link: _Routed) -> None:
        """The hashes a confirmed report brought start to match, now that its destination vouched for it."""
        if not link.hashes:
            return
        attached: dict[str, set[tuple[str, str]]] = self.cache.setdefault("attached_hashes", {})
        present = attached.get(case_id)
        if present is None:
            query = select(CaseHash.alg, CaseHash.value).where(CaseHash.case_id == case_id)
            present = attached[case_id] = set(self.session.execute(query).all())
        for alg, value in link.hashes:
            if (alg, value) not in present:
                self._add(CaseHash, alg=alg, value=value, case_id=case_id)
                present.add((alg, value))

    def _send_history(self, case: _Receipted, member: str, priority: str) -> None:
        """A newly verified duplicate reporter hears every status the case has had so far, in order."""
        for status in self.session.scalars(
            select(CaseStatus).where(CaseStatus.case_id == case.id).order_by(CaseStatus.id)
        ):
            self._send(member, STATUS, status.token, status.doc_id, case.destination, priority)

    # Statuses and notes ----------------------------------------------------------------------------

    def take_status(self, claims: dict[str, Any], token: str, author: str, clock_skew: dt.timedelta) -> None:
        """Record a status from the case's destination and fan its code out to everyone following the case.

        Raises (before any write): UnknownCaseError, NotCaseDestinationError, CaseNotConfirmedError,
        StatusTimeError.
        """
        case = self.session.get(Case, claims["case_id"])
        if case is None:
            raise UnknownCaseError(f"no case {claims['case_id']}")
        self._lock(case.id)
        if case.destination != author:
            raise NotCaseDestinationError(f"{author} is not the destination of case {case.id}")
        if case.state != CONFIRMED:
            raise CaseNotConfirmedError(f"case {case.id} is {case.state}: a status needs a confirmed case")
        at = parse_timestamp(claims["at"])
        if at > self.now + clock_skew or at < case.created_at - clock_skew:
            raise StatusTimeError("a status must not be dated in the future or before its case existed")
        moved_to = self._moved_destination(case, claims) if claims["status"] == "moved" else None
        self.session.add(
            CaseStatus(
                case_id=case.id, doc_id=claims["jti"], status=claims["status"], at=at, received_at=self.now, token=token
            )
        )
        case.status, case.status_at = claims["status"], at
        self.cache.setdefault("statuses", {})[claims["jti"]] = (case.id, author)  # Its note may follow in this batch.
        self._record(f"member:{author}", "case.status", case.id, status=claims["status"])
        milestone = {"ntd_sent": "ntd_sent_at", "police_notified": "police_notified_at", "removed": "removed_at"}
        if claims["status"] in milestone and getattr(case, milestone[claims["status"]]) is None:
            setattr(case, milestone[claims["status"]], at)
        followers = self._followers(case) - {author}
        for member in followers:
            self._send(member, STATUS, token, claims["jti"], author, case.priority)
        if moved_to is not None:
            self._move(case, claims["moved_to"], moved_to, followers)

    def _moved_destination(self, case: Case, claims: dict[str, Any]) -> str:
        """Who covers the country a case's content moved to (its origin, when that is the origin's own).

        Raises (before any write): NotMovedError, NoRouteError.
        """
        if claims["moved_to"] == case.hosting_country:
            raise NotMovedError(f"case {case.id} is already hosted in {case.hosting_country}")
        try:
            return route(self.session, hosting_country=claims["moved_to"], origin=case.origin, now=self.now).id
        except HostedAtOriginError:
            return case.origin

    def _move(self, case: Case, country: str, destination: str, followers: set[str]) -> None:
        """Re-point a case at the country its content moved to, and tell everyone following it.

        The case keeps its id, location and ``confirmed_at`` (the 3-day clock runs from the first report).
        When another member covers the new country, the case is provisional again until that member's
        receipt for the report the origin sends again; its opening report is superseded (``moved``).
        """
        previous = case.destination
        resend = destination not in (previous, case.origin)
        case.hosting_country, case.moved_at = country, self.now
        if destination != previous:
            case.destination = destination
        if resend:
            case.state = PROVISIONAL
            for link in self.session.scalars(
                select(CaseReport).where(CaseReport.case_id == case.id, CaseReport.state == OPENED)
            ):
                link.state, link.settled_at = MOVED, self.now
        self._record(
            f"member:{previous}",
            "case.move",
            case.id,
            hosting_country=country,
            destination=destination,
            previous=previous,
        )
        for member in sorted(followers | {case.origin}):
            self._notify(
                member,
                REROUTE,
                case.priority,
                case_id=case.id,
                hosting_country=country,
                destination=destination,
                previous_destination=previous,
                first_reported_at=format_timestamp(case.confirmed_at),
                resend=resend and member == case.origin,
            )

    def _followers(self, case: Case) -> set[str]:
        """The origin and every member whose duplicate the destination confirmed."""
        verified = self.session.scalars(
            select(CaseReport.member).where(CaseReport.case_id == case.id, CaseReport.state == VERIFIED)
        )
        return {case.origin, *verified}

    def take_note(self, claims: dict[str, Any], token: str, author: str) -> None:
        """Relay a destination's free-text note to the case's origin, and to nobody else.

        Raises (before any write): UnknownCaseError, NotCaseDestinationError, WrongRecipientError.
        """
        case = self.session.get(Case, claims["case_id"])
        if case is None:
            raise UnknownCaseError(f"no case {claims['case_id']}")
        if case.destination != author and not self._wrote_status(case, claims["status_id"], author):
            # A note on a status its author wrote as the destination (the ``moved`` that re-pointed the case).
            raise NotCaseDestinationError(f"{author} is not the destination of case {case.id}")
        if claims["aud"] != case.origin:
            raise WrongRecipientError("a note goes to the case's origin only")
        self._send(case.origin, NOTE, token, claims["jti"], author, case.priority)

    def _wrote_status(self, case: Case, status_id: str, author: str) -> bool:
        """Whether ``author`` wrote status ``status_id`` of ``case`` (in this batch, or stored)."""
        if self.cache.get("statuses", {}).get(status_id) == (case.id, author):
            return True
        token = self.session.scalar(
            select(CaseStatus.token).where(CaseStatus.case_id == case.id, CaseStatus.doc_id == status_id)
        )
        return token is not None and _claims_of(token).get("iss") == author

    # Dead letters ----------------------------------------------------------------------------------

    def dead_letter(self, typ: str, doc_id: str, author: str, error: str) -> None:
        """A document went dead in the outbox: a report that never reached a hotline that accepted it."""
        if typ != REPORT:
            return
        link = self.session.get(CaseReport, (doc_id, author))
        if link is None:
            return
        code = error.split(":", 1)[0].strip() or "refused"
        self._lock(link.case_id)
        case = self.session.get(Case, link.case_id)
        if case is None:
            return
        if link.state == OPENED and case.state == PROVISIONAL:
            self._reject(case, link, code)
        elif link.state == PENDING:
            link.state, link.refused_reason, link.settled_at = REFUSED, code, self.now
            self._refuse(link, code)

    def requeue_report(self, doc_id: str, author: str, token: str) -> str:
        """A report that went dead is sent again after the secretariat fixed the cause: its rejected case
        opens again (routed anew: an override may send it elsewhere now), or a refused duplicate goes to its
        case's destination again. Returns the member it goes to.

        Raises (before any write): RequeueError, NoRouteError, HostedAtOriginError.
        """
        link = self.session.get(CaseReport, (doc_id, author))
        if link is None:
            raise RequeueError(f"report {doc_id} from {author} is not on record here")
        case = self._case(link.case_id, lock=True)
        header = _claims_of(token)["header"]
        if not link.duplicate and case.state == REJECTED and case.id == link.report_id:
            live = self.session.get(Location, case.url_fingerprint)
            if live is not None:
                raise RequeueError(
                    f"case {live.case_id} holds this location now; the report would be a duplicate of it: ask "
                    f"{author} to send it again"
                )
            destination = route(self.session, hosting_country=case.hosting_country, origin=author, now=self.now)
            case.state, case.destination = PROVISIONAL, destination.id
            case.rejected_at = case.rejected_reason = None
            link.refused_reason = link.settled_at = None
            self.session.add(Location(url_fingerprint=case.url_fingerprint, case_id=case.id))
            self._send(destination.id, REPORT, token, doc_id, author, header["priority"])
            self._record("system", "case.requeue", case.id, destination=destination.id)
            return destination.id
        if link.duplicate and link.state == REFUSED and case.state != REJECTED:
            link.refused_reason = link.settled_at = None
            if case.state == PROVISIONAL:
                link.state, link.token = HELD, token
            else:
                link.state = PENDING
                self._send(case.destination, REPORT, token, doc_id, author, header["priority"])
            self._record("system", "case.duplicate_requeue", case.id, report_id=doc_id)
            return case.destination
        raise RequeueError(
            f"report {doc_id} cannot be sent again: its case is {case.state} and the report is {link.state}; "
            f"ask {author} to send it again"
        )

    def _reject(self, case: Case, link: CaseReport, code: str) -> None:
        case.state, case.rejected_at, case.rejected_reason = REJECTED, self.now, code
        self._record("system", "case.reject", case.id, reason=code, destination=case.destination)
        link.settled_at, link.refused_reason = self.now, code
        self.session.execute(delete(Location).where(Location.case_id == case.id))
        self.session.flush()
        self._refuse(link, code)
        held = list(
            self.session.scalars(
                select(CaseReport)
                .where(CaseReport.case_id == case.id, CaseReport.state == HELD)
                .order_by(CaseReport.received_at, CaseReport.report_id)
            )
        )
        for duplicate in held:
            self._reroute(duplicate)

    def _refuse(self, link: CaseReport, code: str) -> None:
        self._record("system", "report.refuse", link.case_id, report_id=link.report_id, member=link.member, reason=code)
        self._notify(
            link.member,
            REFUSAL,
            link.priority,
            report_id=link.report_id,
            error=code if _CODE.fullmatch(code) else "refused",
            message="the report did not reach a hotline that accepted it; check the URL and resubmit",
            at=format_timestamp(self.now),
        )

    def _reroute(self, duplicate: CaseReport) -> None:
        """A report held on a rejected case goes on as a case of its own (or joins another live case)."""
        token = duplicate.token
        if token is None:
            return
        claims = _claims_of(token)
        header = claims["header"]
        try:
            destination = route(
                self.session, hosting_country=header["hosting_country"], origin=duplicate.member, now=self.now
            )
        except ProtocolError as exc:
            duplicate.state, duplicate.token, duplicate.refused_reason = REFUSED, None, exc.code
            self._refuse(duplicate, exc.code)
            return
        live = self.session.get(Location, header["url_fingerprint"])
        if live is not None:
            duplicate.case_id = live.case_id
            case = self._case(live.case_id, lock=True)
            if case.state == PROVISIONAL:
                duplicate.state = HELD
                return
            duplicate.state, duplicate.token = PENDING, None
            self._send(case.destination, REPORT, token, duplicate.report_id, duplicate.member, duplicate.priority)
            return
        if self.session.get(Case, claims["jti"]) is not None:
            duplicate.state, duplicate.token, duplicate.refused_reason = REFUSED, None, "message_id_reused"
            self._refuse(duplicate, "message_id_reused")
            return
        # It opens the case at this location: the case row first, then the report moves onto it.
        case = Case(
            id=claims["jti"],
            url_fingerprint=header["url_fingerprint"],
            origin=duplicate.member,
            destination=destination.id,
            hosting_country=header["hosting_country"],
            legal_status=header["legal_status"],
            priority=header["priority"],
            state=PROVISIONAL,
            confirmed_at=parse_timestamp(header["confirmed_at"]),
            created_at=self.now,
        )
        self.session.add(case)
        self.session.flush()
        self.session.add(Location(url_fingerprint=header["url_fingerprint"], case_id=case.id))
        duplicate.case_id, duplicate.duplicate, duplicate.state, duplicate.token = case.id, False, OPENED, None
        self.session.flush()
        self._send(destination.id, REPORT, token, case.id, duplicate.member, header["priority"])
        self._record("system", "case.reroute", case.id, report_id=duplicate.report_id, destination=destination.id)


@dataclass
class _Routed:
    """A routed report, as a receipt for it (or for its case) needs it."""

    report_id: str
    member: str
    case_id: str
    state: str
    priority: str
    hashes: list[list[str]] | None
    token: str | None = None
    """Only for a held duplicate: its signed report, sent on when the case is confirmed."""


@dataclass
class _Receipted:
    """A case a receipt of the batch is for, read under its row lock."""

    id: str
    destination: str
    state: str
    confirmed_at: dt.datetime


@dataclass
class _Receipts:
    """What the batch's receipts need, read once per transaction (CaseBook._receipt_links)."""

    reports: dict[tuple[str, str], _Routed] = field(default_factory=dict)
    cases: dict[str, _Receipted] = field(default_factory=dict)
    held: dict[str, list[_Routed]] = field(default_factory=dict)


@dataclass
class _Pending:
    """A case opened in this transaction, whose row is not written yet (bulk inserts)."""

    id: str
    url_fingerprint: str
    origin: str
    destination: str
    hosting_country: str
    legal_status: str
    priority: str
    state: str
    confirmed_at: dt.datetime
    created_at: dt.datetime
    status: str | None


class CaseHandlers:
    """The exchange's document handlers, bound to the exchange's signer (for notices)."""

    def __init__(self, signer: Signer, *, clock_skew: dt.timedelta) -> None:
        self.signer = signer
        self.clock_skew = clock_skew

    def handlers(self) -> dict[str, Handler]:
        return {REPORT: self.report, RECEIPT: self.receipt, STATUS: self.status, NOTE: self.note}

    def _book(self, context: InboxContext) -> CaseBook:
        book: CaseBook | None = context.cache.get("book")
        if book is None:
            book = CaseBook(
                session=context.session,
                signer=self.signer,
                outbox=context.outbox,
                now=context.now,
                inserts=context.inserts,
                cache=context.cache,
                batch_reports=[document.claims for document in context.documents if document.typ == REPORT],
                batch_receipts=[document.claims for document in context.documents if document.typ == RECEIPT],
                audit=AuditLog(context.session, AUDIT),
            )
            context.cache["book"] = book
            context.finishers.append(book.audit.flush)  # type: ignore[union-attr]
        return book

    def report(self, document: VerifiedMessage, context: InboxContext) -> None:
        origin = _require_direct(document, context)
        book = self._book(context)
        book.require_active(origin)
        book.take_report(document.claims, document.token, origin)

    def receipt(self, document: VerifiedMessage, context: InboxContext) -> None:
        author = _require_direct(document, context)
        self._book(context).take_receipt(document.claims, document.token, author)

    def status(self, document: VerifiedMessage, context: InboxContext) -> None:
        author = _require_direct(document, context)
        self._book(context).take_status(document.claims, document.token, author, self.clock_skew)

    def note(self, document: VerifiedMessage, context: InboxContext) -> None:
        author = _require_direct(document, context)
        self._book(context).take_note(document.claims, document.token, author)


def dead_letters(signer: Signer, outbox_model: type[Any]) -> Any:
    """The exchange's dead-letter hook for the outbox (see CaseBook.dead_letter)."""

    def on_dead(session: DBSession, row: Any, error: str, now: dt.datetime) -> None:
        audit = AuditLog(session, AUDIT)
        book = CaseBook(session=session, signer=signer, outbox=Outbox(session, outbox_model), now=now, audit=audit)
        book.dead_letter(row.typ, row.doc_id, row.author, error)
        audit.flush()

    return on_dead
