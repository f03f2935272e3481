"""The worker's ``removal-check`` job: check the addresses of open cases received from abroad, record
"removed" when one is gone, and "reappeared" when a removed one answers again."""

from __future__ import annotations

import datetime as dt

from flask import Flask
from sqlalchemy import and_, select

from audit.services import AuditLog
from federation.canonical import canonicalize_url
from node.audit.models import AUDIT
from node.received.models import InboundCase
from node.removal.models import Check, Watch
from node.removal.schedule import NEVER_CHECKED, watch_of
from node.removal.services import Checker
from service.worker import Task

BATCH = 20


def due_cases(session: object, now: dt.datetime, limit: int = BATCH) -> list[InboundCase]:
    """Received cases whose check is due, the longest due first: every case has a watch from the moment
    it is opened (``node.removal.schedule``), so the job reads the due watches through their index and
    costs the same with a thousand cases or a million. Not those marked "do not fetch", nor those whose
    status is never checked (their watch has no next check; the status test guards the rest)."""
    query = (
        select(InboundCase)
        .join(Watch, and_(Watch.case_kind == "received", Watch.case_id == InboundCase.id))
        .where(
            Watch.case_kind == "received",
            Watch.do_not_fetch == False,  # noqa: E712 - "= false" is what an index can serve; "IS" is not.
            Watch.next_check_at <= now,
            InboundCase.status.not_in(NEVER_CHECKED),
        )
        .order_by(Watch.next_check_at)
        .limit(limit)
    )
    return list(session.scalars(query))  # type: ignore[attr-defined]


def check_removals(app: Flask) -> int:
    """Check the addresses that are due (headers only, never the body); returns how many were checked."""
    from node.received.services import record_status

    if not app.config["REMOVAL_CHECK_ENABLED"]:
        return 0
    rt = app.extensions["hotline"]
    session = rt.db.session
    checker = Checker.from_config(app.config)
    cases = due_cases(session, rt.clock())
    # The canonical form: no fragment, the host in its ASCII form, the path resolved as a browser would.
    targets = [(case.id, canonicalize_url(case.url), case.status) for case in cases]
    session.commit()  # No transaction stays open across the requests.
    for case_id, url, status in targets:
        result = checker.check(url)
        now = rt.clock()
        country = _traced_country(app, result.final_url or url, now) if result.outcome == "up" else None
        session.add(
            Check(
                case_kind="received",
                case_id=case_id,
                checked_at=now,
                outcome=result.outcome,
                http_status=result.http_status,
                final_url=result.final_url,
                elapsed_ms=result.elapsed_ms,
                error=result.error,
                country=country,
            )
        )
        removed = status == "removed"
        every = app.config["REMOVAL_RECHECK_EVERY_SECONDS" if removed else "REMOVAL_CHECK_EVERY_SECONDS"]
        watch = watch_of(session, case_id, status=status, now=now)
        if watch.next_check_at is not None:  # None: the case's status took it off the schedule meanwhile.
            watch.next_check_at = now + dt.timedelta(seconds=float(every))
        watch.last_outcome = result.outcome
        change = None
        if not removed and result.outcome == "gone":
            change = "removed"
        elif removed and result.outcome == "up":
            change = "reappeared"
        if change:
            # The status goes back through the exchange to every hotline that reported the location.
            record_status(
                session,
                signer=rt.signer,
                outbox=rt.outbox(),
                exchange_id=app.config["EXCHANGE_ID"],
                case_id=case_id,
                unverified_input={"status": change},
                now=now,
            )
            AuditLog(session, AUDIT).record(
                "system",
                f"removal.{change}",
                "case",
                case_id,
                now=now,
                http_status=result.http_status,
                final_url=result.final_url,
            )
        session.commit()
    return len(targets)


def _traced_country(app: Flask, url: str, now: dt.datetime) -> str | None:
    """Where the hosting trace places the host of an address that answered (its DNS and address database,
    never the content); None when it cannot say (a CDN, a name that does not resolve)."""
    from node.hosting.services import tools, trace

    return trace(canonicalize_url(url), tools(app), now=now).suggested_country


TASKS = [Task("removal-check", check_removals, seconds_key="REMOVAL_CHECK_SECONDS", help=check_removals.__doc__ or "")]
