"""Re-notices and deadlines: while a location is still up, its provider is notified again every
``renotice_hours`` (the contact's setting), never on a quiet day, and a case whose first notice is older
than the deadline is flagged for the supervisor to escalate (upstream or registrar, then the police).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from audit.services import AuditLog
from node.audit.models import AUDIT
from node.notices.models import PENDING, SENT, AbuseContact, Notice
from node.received.models import InboundCase
from service.database import DBSession

FINISHED = ("removed", "not_illegal_here")
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


@dataclass(frozen=True)
class Overdue:
    case: InboundCase
    first_notice_at: dt.datetime
    notices: int


def past_deadline(session: DBSession, *, now: dt.datetime, hours: float) -> list[Overdue]:
    """Open cases whose first notice went out more than ``hours`` ago: the supervisor escalates them."""
    cases = _open_received(session)
    first: dict[str, dt.datetime] = {}
    counts: dict[str, int] = {}
    for notice in session.scalars(
        select(Notice).where(Notice.case_kind == "received", Notice.case_id.in_(list(cases)), Notice.state == SENT)
    ):
        if notice.sent_at is None:
            continue
        counts[notice.case_id] = counts.get(notice.case_id, 0) + 1
        if notice.case_id not in first or notice.sent_at < first[notice.case_id]:
            first[notice.case_id] = notice.sent_at
    deadline = now - dt.timedelta(hours=hours)
    overdue = [Overdue(cases[cid], at, counts[cid]) for cid, at in first.items() if at <= deadline]
    return sorted(overdue, key=lambda item: item.first_notice_at)
