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
from node.received.models import InboundCase
from service.database import DBSession

FINISHED = ("removed", "not_illegal_here", "moved")
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


def _open_received(session: DBSession) -> dict[str, InboundCase]:
    return {c.id: c for c in session.scalars(select(InboundCase).where(InboundCase.status.not_in(FINISHED)))}


def _one_open(case: InboundCase) -> dict[str, InboundCase]:
    return {} if case.status in FINISHED else {case.id: case}


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
    cases = _open_received(session)
    if not cases:
        return []
    latest: dict[tuple[str, str], Notice] = {}
    waiting: set[tuple[str, str]] = set()
    for notice in session.scalars(
        select(Notice).where(
            Notice.case_kind == "received", Notice.case_id.in_(list(cases)), Notice.state.in_((SENT, PENDING))
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
    cases = _open_received(session) if only is None else _one_open(only)
    roles = dict(session.execute(select(AbuseContact.id, AbuseContact.role)).all())
    first: dict[tuple[str, str], dt.datetime] = {}
    counts: dict[str, int] = {}
    for notice in session.scalars(
        select(Notice).where(Notice.case_kind == "received", Notice.case_id.in_(list(cases)), Notice.state == SENT)
    ):
        if notice.sent_at is None:
            continue
        step = "upstream" if roles.get(notice.contact_id) in UPSTREAM_ROLES else "hosting"
        counts[notice.case_id] = counts.get(notice.case_id, 0) + 1
        key = (notice.case_id, step)
        if key not in first or notice.sent_at < first[key]:
            first[key] = notice.sent_at
    overdue: list[Overdue] = []
    for case_id, case in cases.items():
        upstream_at = first.get((case_id, "upstream"))
        hosting_at = first.get((case_id, "hosting"))
        if upstream_at is not None:
            limit = hours if upstream_hours is None else upstream_hours
            if upstream_at <= now - dt.timedelta(hours=limit):
                overdue.append(Overdue(case, "upstream", upstream_at, counts[case_id]))
        elif hosting_at is not None and hosting_at <= now - dt.timedelta(hours=hours):
            overdue.append(Overdue(case, "hosting", hosting_at, counts[case_id]))
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
