"""The analyst's day on one case: who has it, what the network knows, the assessment, where it is hosted,
and where it goes. Every change is recorded in the audit trail in the same transaction (who, what,
before and after), and the audit trail is also the case's history on its page.

A case is a location. Reports of the same URL (same fingerprint under the network's rules) join one case
with their reporters kept; a report of a closed case's location opens it again, because the content may
have changed. What the reporters see follows the case (``PUBLIC_STATUS``).

The states, and who moves a case between them::

    new ──assess──► assessed ──decide──► forwarded (abroad, through the exchange)
     ▲   (four-eyes:  ▲                ├─► hosted_here (notice and police here)
     │    review ─────┘ approve)       └─► closed (not illegal, gone, not a report)
     └──────────── returned by the reviewer, or reported again after closing
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update

from audit.services import AuditLog
from federation.errors import ProtocolError
from federation.signing import new_message_id
from node.audit.models import AUDIT
from node.cases.models import (
    ASSESSED,
    CLOSED,
    FORWARDED,
    HOSTED_HERE,
    NEW,
    OPEN_STATES,
    PUBLIC_STATUS,
    REVIEW,
    Case,
    CaseHash,
)
from node.intake.models import Submission
from service.database import DBSession

CLOSE_REASONS = {
    "not_illegal": "Not illegal",
    "no_content": "Nothing found at the address",
    "out_of_remit": "Not child sexual abuse material (outside the hotline's remit)",
    "already_handled": "Already handled (removed, or reported through another case)",
    "not_a_report": "Not a report (test, spam or abuse of the form)",
}
_CHUNK = 500


class CaseError(ProtocolError):
    """A change the case's state does not allow, said so the analyst knows what to do instead."""

    status = 409
    code = "case_state"


@dataclass(frozen=True)
class Location:
    url: str
    canonical_url: str
    fingerprint: str


# --- intake: every report joins its location's case -------------------------------------------------


def _insert_new(session: DBSession, rows: list[dict[str, Any]]) -> None:
    """Insert cases, skipping any location another transaction created meanwhile (its unique fingerprint)."""
    if not rows:
        return
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(Case).on_conflict_do_nothing(index_elements=["url_fingerprint"]), rows)


def _new_row(location: Location, *, reporters: int, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": new_message_id(),
        "url": location.url,
        "canonical_url": location.canonical_url,
        "url_fingerprint": location.fingerprint,
        "state": NEW,
        "priority": "normal",
        "first_reported_at": now,
        "last_reported_at": now,
        "state_changed_at": now,
        "reporters": reporters,
        "known": False,
        "fallback": False,
    }


def case_for_report(session: DBSession, location: Location, *, now: dt.datetime) -> str:
    """The id of this location's case, with one more reporter (see :func:`cases_for_reports`)."""
    return cases_for_reports(session, [location], now=now)[location.fingerprint]


def cases_for_reports(session: DBSession, locations: list[Location], *, now: dt.datetime) -> dict[str, str]:
    """The case id of each location's fingerprint, for a whole batch in a few statements.

    New locations get new cases; known ones count their new reporters; closed ones open again. Two
    transactions that report the same new location at once end with one case: the second insert is
    skipped on the unique fingerprint, and its reports count on the first one's case.
    """
    wanted = {location.fingerprint: location for location in locations}
    counts = Counter(location.fingerprint for location in locations)

    def lookup() -> dict[str, tuple[str, str]]:
        found: dict[str, tuple[str, str]] = {}
        ordered = sorted(wanted)
        for start in range(0, len(ordered), _CHUNK):
            chunk = ordered[start : start + _CHUNK]
            query = select(Case.url_fingerprint, Case.id, Case.state).where(Case.url_fingerprint.in_(chunk))
            for fingerprint, case_id, state in session.execute(query):
                found[fingerprint] = (case_id, state)
        return found

    before = lookup()
    created = {
        fp: _new_row(location, reporters=counts[fp], now=now) for fp, location in wanted.items() if fp not in before
    }
    _insert_new(session, list(created.values()))
    after = lookup() if created else before
    for fingerprint, (case_id, _state) in after.items():
        mine = created.get(fingerprint)
        if mine is None or mine["id"] != case_id:  # Known before, or made by another transaction meanwhile.
            session.execute(
                update(Case)
                .where(Case.id == case_id)
                .values(reporters=Case.reporters + counts[fingerprint], last_reported_at=now)
            )
    closed = [case_id for fp, (case_id, state) in after.items() if state == CLOSED]
    if closed:
        _reopen(session, closed, now)
    return {fingerprint: case_id for fingerprint, (case_id, _) in after.items()}


def _reopen(session: DBSession, case_ids: list[str], now: dt.datetime) -> None:
    session.execute(
        update(Case)
        .where(Case.id.in_(case_ids))
        .values(state=NEW, state_changed_at=now, closed_reason=None, closed_note=None, decided_at=None)
    )
    log = AuditLog(session, AUDIT)
    for case_id in case_ids:
        log.record("system", "case.reopen", "case", case_id, now=now, before=CLOSED, after=NEW, why="reported again")


# --- the analyst's and the supervisor's changes --------------------------------------------------------


class CaseBook:
    """Changes to cases by one person (``actor``), each in the audit trail."""

    def __init__(self, session: DBSession, *, actor: str, now: dt.datetime) -> None:
        self.session = session
        self.actor = actor
        self.now = now
        self.audit = AuditLog(session, AUDIT)

    def _record(self, case: Case, action: str, **detail: Any) -> None:
        self.audit.record(self.actor, action, "case", case.id, now=self.now, **detail)

    def _move(self, case: Case, state: str, action: str, **detail: Any) -> None:
        before = case.state
        case.state = state
        case.state_changed_at = self.now
        self._record(case, action, before=before, after=state, **detail)
        status = PUBLIC_STATUS[state]
        if status != PUBLIC_STATUS.get(before):
            self.session.execute(
                update(Submission)
                .where(Submission.case_id == case.id)
                .values(public_status=status, status_changed_at=self.now)
            )

    def _require(self, case: Case, states: Iterable[str], doing: str) -> None:
        allowed = tuple(states)
        if case.state not in allowed:
            raise CaseError(f"this case is {case.state.replace('_', ' ')}: it cannot be {doing} now")

    def assign(self, cases: list[Case], to: str | None) -> int:
        """Give cases to ``to`` (None: back to the queue); returns how many changed hands."""
        changed = 0
        for case in cases:
            if case.assigned_to == to:
                continue
            self._record(case, "case.assign", before=case.assigned_to, after=to)
            case.assigned_to = to
            case.assigned_at = self.now if to else None
            changed += 1
        return changed

    def record_triage(self, case: Case, answer: dict[str, Any]) -> None:
        """Keep what the network and this hotline know of the location or its material (node.cases.triage)."""
        network = answer.get("network") or {}
        here = answer.get("here") or {}
        case.triage = answer
        case.triaged_at = self.now
        case.known = bool(
            network.get("location")
            or network.get("material")
            or any(here.get(k) for k in ("sent", "received", "material"))
        )
        self._record(
            case,
            "case.triage",
            known=case.known,
            network="unreachable" if answer.get("error") else ("known" if network.get("location") else "unknown"),
            material=len(network.get("material") or []),
        )

    def assess(self, case: Case, assessment: dict[str, Any], *, four_eyes: bool) -> None:
        self._require(case, (NEW, ASSESSED, REVIEW), "assessed")
        case.assessment = assessment
        case.legal_status = assessment["legal_status"]
        case.priority = assessment.get("priority", "normal")
        case.urgent_reason = assessment.get("urgent_reason")
        case.assessed_by = self.actor
        case.assessed_at = self.now
        case.reviewed_by = case.reviewed_at = None
        self.session.execute(delete(CaseHash).where(CaseHash.case_id == case.id))
        self.session.add_all(
            CaseHash(alg=item["alg"], value=item["value"], case_id=case.id)
            for item in {(h["alg"], h["value"]): h for h in assessment.get("content_hashes", [])}.values()
        )
        target = REVIEW if four_eyes else ASSESSED
        summary = {k: v for k, v in assessment.items() if k not in ("notes", "content_hashes", "urgent_reason")}
        self._move(case, target, "case.assess", assessment=summary, hashes=len(assessment.get("content_hashes", [])))

    def review(self, case: Case, *, approve: bool, note: str) -> None:
        self._require(case, (REVIEW,), "reviewed")
        if case.assessed_by == self.actor:
            raise CaseError("the second look must be someone else's: ask another supervisor")
        if approve:
            case.reviewed_by = self.actor
            case.reviewed_at = self.now
            self._move(case, ASSESSED, "case.review", approved=True, note=note or None)
        else:
            if not note:
                raise CaseError("say what to change, so the analyst can assess it again")
            self._move(case, NEW, "case.review", approved=False, note=note)

    def record_trace(self, case: Case, trace: dict[str, Any]) -> None:
        case.trace = trace
        case.traced_at = self.now
        suggested = trace.get("suggested_country")
        if case.country_source != "override":
            before = case.hosting_country
            case.hosting_country = suggested
            case.country_source = "trace" if suggested else None
            self._record(case, "case.trace", host=trace.get("host"), suggested=suggested, before=before)
        else:
            self._record(case, "case.trace", host=trace.get("host"), suggested=suggested, kept=case.hosting_country)

    def override_country(self, case: Case, country: str, reason: str) -> None:
        self._require(case, OPEN_STATES, "re-located")
        before = case.hosting_country
        case.hosting_country = country
        case.country_source = "override"
        case.country_reason = reason
        self._record(case, "case.country_override", before=before, after=country, reason=reason)

    def hosted_here(self, case: Case) -> None:
        self._require(case, (ASSESSED,), "kept here")
        case.decided_by, case.decided_at = self.actor, self.now
        self._move(case, HOSTED_HERE, "case.decide", decision="hosted_here", country=case.hosting_country)

    def forwarded(self, case: Case, *, report_id: str, destination: str | None, fallback: bool = False) -> None:
        """Sent abroad; ``fallback``: nobody covers the country, so the network's fallback handles it."""
        self._require(case, (ASSESSED,), "forwarded")
        case.report_id = report_id
        case.destination = destination
        case.fallback = fallback
        case.decided_by, case.decided_at = self.actor, self.now
        self._move(
            case,
            FORWARDED,
            "case.decide",
            decision="forward",
            country=case.hosting_country,
            destination=destination,
            fallback=fallback,
        )

    def close(self, case: Case, *, reason: str, note: str) -> None:
        if reason not in CLOSE_REASONS:
            raise CaseError("choose a reason from the list")
        self._require(case, OPEN_STATES, "closed")
        case.closed_reason = reason
        case.closed_note = note or None
        case.decided_by, case.decided_at = self.actor, self.now
        self._move(case, CLOSED, "case.close", reason=reason)


def open_cases(session: DBSession) -> Any:
    return select(Case).where(Case.state.in_(OPEN_STATES))
