"""Re-notices and deadlines: while a location is still up, its provider is notified again every
``renotice_hours`` (the contact's setting), never on a quiet day, and a case whose first notice is older
than the deadline is flagged for the supervisor to escalate (upstream or registrar, then the police).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from audit.services import AuditLog
from node.audit.models import AUDIT
from node.notices.models import CANCELLED, PENDING, SENT, AbuseContact, Notice
from node.received.models import FINISHED, InboundCase, is_open
from service.database import DBSession

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def check_quiet_days(values: Iterable[object]) -> list[str]:
    """The configured quiet days: ISO dates (``2026-12-25``) or weekday names (``sunday``).

    Raises:
        ValueError: a value that is neither.
    """
    days: list[str] = []
    for value in values:
        text = str(value).strip().lower()
        if text not in WEEKDAYS:
            dt.date.fromisoformat(text)
        days.append(text)
    return days


def is_quiet(day: dt.date, quiet_days: list[str]) -> bool:
    return day.isoformat() in quiet_days or WEEKDAYS[day.weekday()] in quiet_days


_OPEN_RECEIVED = select(InboundCase.id).where(is_open())
"""The open received cases, as a subquery. The ladder read every open case and named them all in the
notices' query: work that grew with the store, and past 65,535 open cases a statement PostgreSQL refuses
(SQLite here allows 250,000 parameters)."""

_CHUNK = 500
"""Cases loaded per statement by id."""


def _received_cases(session: DBSession, ids: list[str]) -> dict[str, InboundCase]:
    found: dict[str, InboundCase] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        found.update((case.id, case) for case in session.scalars(select(InboundCase).where(InboundCase.id.in_(chunk))))
    return found


def cancel_finished(session: DBSession, *, now: dt.datetime) -> int:
    """Notices still waiting for a case that closed meanwhile (removed, not illegal here, moved) are
    cancelled, never sent: the provider is not asked to remove what is gone or no longer theirs."""
    finished = select(InboundCase.id).where(InboundCase.status.in_(FINISHED))
    stale = list(
        session.scalars(
            select(Notice).where(Notice.state == PENDING, Notice.case_kind == "received", Notice.case_id.in_(finished))
        )
    )
    for notice in stale:
        notice.state = CANCELLED
        AuditLog(session, AUDIT).record(
            "system", "notice.cancelled", notice.case_kind, notice.case_id, now=now, notice=notice.id
        )
    return len(stale)


def schedule_renotices(session: DBSession, *, now: dt.datetime, group_seconds: float = 0) -> list[Notice]:
    """A new notice for every (open case, contact) whose latest notice was sent ``renotice_hours`` ago and
    that has none waiting; written in the caller's transaction, sent by the ``notices`` job."""
    latest: dict[tuple[str, str], Notice] = {}
    waiting: set[tuple[str, str]] = set()
    for notice in session.scalars(
        select(Notice).where(
            Notice.case_kind == "received", Notice.case_id.in_(_OPEN_RECEIVED), Notice.state.in_((SENT, PENDING))
        )
    ):
        key = (notice.case_id, notice.contact_id)
        if notice.state == PENDING:
            waiting.add(key)
        elif key not in latest or (notice.sent_at or now) > (latest[key].sent_at or now):
            latest[key] = notice
    made: list[Notice] = []
    contacts = {c.id: c for c in session.scalars(select(AbuseContact))}
    for key, last in latest.items():
        contact = contacts.get(last.contact_id)
        if key in waiting or contact is None or contact.disabled_at is not None or last.sent_at is None:
            continue
        if last.sent_at + dt.timedelta(hours=contact.renotice_hours) > now:
            continue
        number = int(last.details.get("number", 1)) + 1
        notice = Notice(
            id=str(uuid.uuid4()),
            case_kind=last.case_kind,
            case_id=last.case_id,
            contact_id=contact.id,
            recipient=contact.email,
            language=contact.language,
            url=last.url,
            details={**last.details, "number": number},
            state=PENDING,
            created_at=now,
            created_by="system",
            due_at=now + dt.timedelta(seconds=group_seconds),
            attempts=0,
            followed_up=False,
        )
        session.add(notice)
        AuditLog(session, AUDIT).record(
            "system",
            "notice.renotice",
            "received",
            last.case_id,
            now=now,
            notice=notice.id,
            contact=contact.name,
            number=number,
        )
        made.append(notice)
    return made


UPSTREAM_ROLES = ("upstream", "registrar")


@dataclass(frozen=True)
class Overdue:
    """An open case past a deadline of the ladder: ``step`` is ``hosting`` (the provider had its time:
    the upstream network or registrar is next) or ``upstream`` (they had theirs: the police are next)."""

    case: InboundCase
    step: str
    since: dt.datetime
    """When the step's first notice went out."""
    notices: int


def past_deadline(
    session: DBSession,
    *,
    now: dt.datetime,
    hours: float,
    upstream_hours: float | None = None,
    only: InboundCase | None = None,
) -> list[Overdue]:
    """Open cases (or ``only`` that one) past a deadline: the first notice to the host more than ``hours``
    ago with no notice to an upstream or registrar yet, or the first of those more than
    ``upstream_hours`` ago."""
    if only is not None and only.status in FINISHED:
        return []
    scope = Notice.case_id == only.id if only is not None else Notice.case_id.in_(_OPEN_RECEIVED)
    roles = dict(session.execute(select(AbuseContact.id, AbuseContact.role)).all())
    first: dict[tuple[str, str], dt.datetime] = {}
    counts: dict[str, int] = {}
    for case_id, contact_id, sent_at in session.execute(
        select(Notice.case_id, Notice.contact_id, Notice.sent_at).where(
            Notice.case_kind == "received", scope, Notice.state == SENT, Notice.sent_at.is_not(None)
        )
    ):
        if sent_at is None:  # The statement leaves these out; this is for the type checker.
            continue
        step = "upstream" if roles.get(contact_id) in UPSTREAM_ROLES else "hosting"
        counts[case_id] = counts.get(case_id, 0) + 1
        key = (case_id, step)
        if key not in first or sent_at < first[key]:
            first[key] = sent_at
    due: list[tuple[str, str, dt.datetime]] = []
    for case_id in counts:
        upstream_at = first.get((case_id, "upstream"))
        hosting_at = first.get((case_id, "hosting"))
        if upstream_at is not None:
            limit = hours if upstream_hours is None else upstream_hours
            if upstream_at <= now - dt.timedelta(hours=limit):
                due.append((case_id, "upstream", upstream_at))
        elif hosting_at is not None and hosting_at <= now - dt.timedelta(hours=hours):
            due.append((case_id, "hosting", hosting_at))
    cases = {only.id: only} if only is not None else _received_cases(session, [case_id for case_id, _, _ in due])
    overdue = [
        Overdue(cases[case_id], step, since, counts[case_id]) for case_id, step, since in due if case_id in cases
    ]
    return sorted(overdue, key=lambda item: item.since)


def escalate(
    session: DBSession, overdue: list[Overdue], *, suggest: Any, now: dt.datetime, group_seconds: float = 0
) -> list[Notice]:
    """For every case past the host's deadline, a notice to the upstream network or registrar the
    directory suggests for its address (``suggest(case)`` lists the suggestions, likeliest first); cases
    with none stay flagged for the supervisor. The police are never notified automatically."""
    from node.notices.services import decide, details_of

    made: list[Notice] = []
    for item in overdue:
        if item.step != "hosting":
            continue
        waiting = session.scalar(
            select(Notice.id)
            .join(AbuseContact, AbuseContact.id == Notice.contact_id)
            .where(
                Notice.case_kind == "received",
                Notice.case_id == item.case.id,
                Notice.state == PENDING,
                AbuseContact.role.in_(UPSTREAM_ROLES),
            )
        )
        if waiting is not None:  # Already escalated; the notice is on its way.
            continue
        upstream = next((s.contact for s in suggest(item.case) if s.contact.role in UPSTREAM_ROLES), None)
        if upstream is None:
            continue
        details = details_of(item.case, escalated_from="hosting")
        notice = decide(
            session,
            case_kind="received",
            case_id=item.case.id,
            url=item.case.url,
            details=details,
            contact=upstream,
            actor="system",
            now=now,
            group_seconds=group_seconds,
        )
        AuditLog(session, AUDIT).record(
            "system", "notice.escalate", "received", item.case.id, now=now, to=upstream.name, role=upstream.role
        )
        made.append(notice)
    return made
