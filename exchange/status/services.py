"""Network-wide figures: volumes, duplicates avoided, time to removal, and the health of every member."""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

from sqlalchemy import func, select

from exchange.cases.models import Case, CaseReport
from exchange.members.models import Member
from exchange.messaging.models import Outbox, Peer
from federation.database import DBSession
from federation.delivery import describe_outbox

THREE_DAYS = dt.timedelta(days=3)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def network_status(session: DBSession, *, now: dt.datetime) -> dict[str, Any]:
    """Return the network-wide status as a JSON-ready dict."""
    cases = list(
        session.execute(
            select(Case.hosting_country, Case.legal_status, Case.status, Case.confirmed_at, Case.removed_at)
        ).tuples()
    )
    by_country: dict[str, int] = {}
    by_legal: dict[str, int] = {}
    by_status: dict[str, int] = {}
    removal_hours: list[float] = []
    for country, legal, status, confirmed_at, removed_at in cases:
        by_country[country] = by_country.get(country, 0) + 1
        by_legal[legal] = by_legal.get(legal, 0) + 1
        by_status[status] = by_status.get(status, 0) + 1
        if removed_at is not None:
            removal_hours.append((removed_at - confirmed_at).total_seconds() / 3600)
    duplicates = session.scalar(select(func.count()).select_from(CaseReport).where(CaseReport.duplicate.is_(True)))
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
    removed = len(removal_hours)
    return {
        "generated_at": now.isoformat(),
        "cases": {
            "total": len(cases),
            "by_hosting_country": by_country,
            "by_legal_status": by_legal,
            "by_status": by_status,
            "duplicates_avoided": duplicates,
            "removed": removed,
            "removed_within_3_days": sum(1 for hours in removal_hours if hours <= THREE_DAYS.total_seconds() / 3600),
            "median_hours_to_removal": round(statistics.median(removal_hours), 2) if removal_hours else None,
        },
        "members": members,
    }
