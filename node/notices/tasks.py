"""The worker's ``notices`` job: send the notices that are due, each in its own small transaction."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select

from audit.services import AuditLog
from node.audit.models import AUDIT
from node.notices.ladder import cancel_finished, escalate, is_quiet, past_deadline, schedule_renotices
from node.notices.models import SENT, Notice
from node.notices.services import Mailer, attempt, due
from node.received.models import InboundCase
from service.worker import Task


def follow_up(app: Flask, rt: Any, notice: Notice) -> None:
    """What a sent notice leads to: the audit entry and, for a case from abroad, "notice sent" back to every
    hotline that reported the location (once: not again for a reminder)."""
    from node.received.services import record_status

    session = rt.db.session
    now = notice.sent_at or rt.clock()
    AuditLog(session, AUDIT).record(
        "system",
        "notice.sent",
        notice.case_kind,
        notice.case_id,
        now=now,
        notice=notice.id,
        to=notice.recipient,
        message_id=notice.message_id,
    )
    case = session.get(InboundCase, notice.case_id) if notice.case_kind == "received" else None
    # Only a case still waiting for action says so; a later status (police, removed, moved) stands.
    if case is not None and case.status in ("received", "assessed", "reappeared"):
        record_status(
            session,
            signer=rt.signer,
            outbox=rt.outbox(),
            exchange_id=app.config["EXCHANGE_ID"],
            case_id=notice.case_id,
            unverified_input={"status": "ntd_sent"},
            now=now,
        )
    notice.followed_up = True


def _suggester(app: Flask, session: Any, now: Any) -> Any:
    """Contacts for a case's address, likeliest first (the hosting trace, then the directory)."""
    from node.hosting.services import tools
    from node.notices.contacts import ContactBook
    from node.received.services import hosting_trace

    book = ContactBook(session, actor="system", now=now)
    return lambda case: book.suggest_for(hosting_trace(case, tools(app), now=now)[0])


def send_notices(app: Flask) -> int:
    """Send the notices that are due through the configured SMTP server, after writing the re-notices that
    have come due (the contact's ``renotice_hours`` after the last notice, while the content is up);
    nothing on a quiet day. Returns how many were sent.

    Each notice is marked sent in a transaction of its own, committed as soon as the mail server accepted
    it; what follows from it (audit, status) is a second transaction, redone on the next run if the worker
    died in between. So a crash can resend a notice only in the moment between the server's acceptance
    and that one-row commit, and then with the same Message-ID.
    """
    mailer = Mailer.from_config(app.config)
    if mailer is None:
        return 0
    rt = app.extensions["hotline"]
    session = rt.db.session
    for notice in session.scalars(select(Notice).where(Notice.state == SENT, Notice.followed_up.is_(False))):
        follow_up(app, rt, notice)
        session.commit()
    if is_quiet(rt.clock().date(), app.config["NOTICE_QUIET_DAYS"]):
        return 0  # A public holiday (or a day off): notices and reminders wait for the next working day.
    group_seconds = float(app.config["NOTICE_GROUP_SECONDS"])
    cancel_finished(session, now=rt.clock())
    schedule_renotices(session, now=rt.clock(), group_seconds=group_seconds)
    session.commit()
    overdue = past_deadline(
        session,
        now=rt.clock(),
        hours=float(app.config["NOTICE_DEADLINE_HOURS"]),
        upstream_hours=float(app.config["NOTICE_UPSTREAM_DEADLINE_HOURS"]),
    )
    if any(item.step == "hosting" for item in overdue):
        escalate(
            session, overdue, suggest=_suggester(app, session, rt.clock()), now=rt.clock(), group_seconds=group_seconds
        )
        session.commit()
    sent = 0
    for group in due(session, rt.clock(), group=int(app.config["NOTICE_GROUP_MAX"])):
        message_id = attempt(session, mailer, group, now=rt.clock())
        session.commit()  # The send is on record at once (or its failure and next try).
        if message_id is not None:
            for notice in group:
                follow_up(app, rt, notice)
            session.commit()
            sent += len(group)
    return sent


TASKS = [Task("notices", send_notices, seconds_key="NOTICE_SECONDS", help=send_notices.__doc__ or "")]
