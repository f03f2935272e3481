"""Network-wide figures: volumes, duplicates avoided, refusals, time to removal, and every member's health.

Figures are computed by SQL aggregation; nothing loads every case into Python.
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

from sqlalchemy import func, select

from exchange.cases.models import REJECTED, VERIFIED, Case, CaseReport
from exchange.members.models import Member
from exchange.messaging.models import Outbox, Peer
from federation.delivery import describe_outbox
from service.database import DBSession

THREE_DAYS = dt.timedelta(days=3)
RECENT_REFUSALS = 50


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _counts(session: DBSession, column: Any, *where: Any) -> dict[str, int]:
    query = select(column, func.count()).where(*where).group_by(column)
    return {str(key): int(count) for key, count in session.execute(query).all()}


def network_status(session: DBSession, *, now: dt.datetime) -> dict[str, Any]:
    """Return the network-wide status as a JSON-ready dict."""
    live = Case.state != REJECTED
    total = session.scalar(select(func.count()).select_from(Case).where(live)) or 0
    removal = [
        (removed_at - confirmed_at).total_seconds() / 3600
        for confirmed_at, removed_at in session.execute(
            select(Case.confirmed_at, Case.removed_at).where(live, Case.removed_at.is_not(None))
        ).all()
        if removed_at is not None
    ]
    duplicates = session.scalar(
        select(func.count()).select_from(CaseReport).where(CaseReport.duplicate.is_(True), CaseReport.state == VERIFIED)
    )
    refusals = [
        {
            "report_id": report_id,
            "origin": member,
            "reason": reason,
            "at": _iso(at),
            "duplicate": bool(duplicate),
        }
        for report_id, member, reason, at, duplicate in session.execute(
            select(
                CaseReport.report_id,
                CaseReport.member,
                CaseReport.refused_reason,
                CaseReport.settled_at,
                CaseReport.duplicate,
            )
            .where(CaseReport.refused_reason.is_not(None))
            .order_by(CaseReport.settled_at.desc())
            .limit(RECENT_REFUSALS)
        ).all()
    ]
    refused_total = session.scalar(
        select(func.count()).select_from(CaseReport).where(CaseReport.refused_reason.is_not(None))
    )
    members: dict[str, dict[str, Any]] = {}
    for member in session.scalars(select(Member).order_by(Member.id)):
        members[member.id] = {
            "status": member.status,
            "countries": member.countries,
            "fallback": member.is_fallback,
            "backlog": 0,
            "dead_letters": 0,
            "oldest_undelivered": None,
        }
    # Member health is the delivery queues' own view (federation.delivery), in the secretariat's words.
    for member_id, queue in describe_outbox(session, Outbox, Peer).items():
        entry = members.setdefault(member_id, {})
        entry.update(backlog=queue["pending"], dead_letters=queue["dead"], oldest_undelivered=queue["oldest_pending"])
        if "failures" in queue:
            entry.update(
                failing_deliveries=queue["failures"],
                last_contact=queue["last_contact_at"],
                last_delivery=queue["last_success_at"],
                last_error=queue["last_error"],
                certificate_expires=queue["certificate_not_after"],
            )
    return {
        "generated_at": now.isoformat(),
        "cases": {
            "total": total,
            "by_hosting_country": _counts(session, Case.hosting_country, live),
            "by_legal_status": _counts(session, Case.legal_status, live),
            "by_state": _counts(session, Case.state),
            "by_status": _counts(session, Case.status, live, Case.status.is_not(None)),
            "duplicates_avoided": duplicates,
            "removed": len(removal),
            "removed_within_3_days": sum(1 for hours in removal if hours <= THREE_DAYS.total_seconds() / 3600),
            "median_hours_to_removal": round(statistics.median(removal), 2) if removal else None,
        },
        "refusals": {"total": refused_total, "recent": refusals},
        "members": members,
    }
