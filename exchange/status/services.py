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
    for destination, state, count, oldest in session.execute(
        select(Outbox.destination, Outbox.state, func.count(), func.min(Outbox.created_at))
        .where(Outbox.state != "delivered")
        .group_by(Outbox.destination, Outbox.state)
    ).tuples():
        entry = members.setdefault(destination, {"backlog": 0, "dead_letters": 0, "oldest_undelivered": None})
        if state == "pending":
            entry["backlog"], entry["oldest_undelivered"] = count, _iso(oldest)
        else:
            entry["dead_letters"] = count
    for peer in session.scalars(select(Peer)):
        entry = members.setdefault(peer.member_id, {"backlog": 0, "dead_letters": 0, "oldest_undelivered": None})
        entry.update(
            failing_deliveries=peer.failures,
            last_contact=_iso(peer.last_contact_at),
            last_delivery=_iso(peer.last_success_at),
            last_error=peer.last_error,
            certificate_expires=_iso(peer.certificate_not_after),
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
