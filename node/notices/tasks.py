"""The worker's ``notices`` job: send the notices that are due, one transaction per notice."""

from __future__ import annotations

from flask import Flask

from audit.services import AuditLog
from node.audit.models import AUDIT
from node.notices.ladder import is_quiet, schedule_renotices
from node.notices.services import Mailer, attempt, due
from node.received.models import InboundCase
from service.worker import Task


def send_notices(app: Flask) -> int:
    """Send the notices that are due through the configured SMTP server, after writing the re-notices that
    have come due (the contact's ``renotice_hours`` after the last notice, while the content is up);
    nothing on a quiet day. Returns how many were sent."""
    from node.received.services import record_status

    mailer = Mailer.from_config(app.config)
    if mailer is None:
        return 0
    rt = app.extensions["hotline"]
    session = rt.db.session
    if is_quiet(rt.clock().date(), app.config["NOTICE_QUIET_DAYS"]):
        return 0  # A public holiday (or a day off): notices and re-notices wait for the next working day.
    schedule_renotices(session, now=rt.clock())
    session.commit()
    sent = 0
    for notice in due(session, rt.clock()):
        now = rt.clock()
        message_id = attempt(session, mailer, notice, now=now)
        if message_id is not None:
            AuditLog(session, AUDIT).record(
                "system",
                "notice.sent",
                notice.case_kind,
                notice.case_id,
                now=now,
                notice=notice.id,
                to=notice.recipient,
                message_id=message_id,
            )
            case = session.get(InboundCase, notice.case_id) if notice.case_kind == "received" else None
            if case is not None and case.status != "ntd_sent":
                # "Notice sent" goes back to every hotline that reported the location.
                record_status(
                    session,
                    signer=rt.signer,
                    outbox=rt.outbox(),
                    exchange_id=app.config["EXCHANGE_ID"],
                    case_id=notice.case_id,
                    unverified_input={"status": "ntd_sent"},
                    now=now,
                )
            sent += 1
        session.commit()
    return sent


TASKS = [Task("notices", send_notices, seconds_key="NOTICE_SECONDS", help=send_notices.__doc__ or "")]
