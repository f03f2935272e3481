"""Network-wide figures: volumes, time to removal, police referral, notice time, duplicates, member health.

Every figure is an SQL aggregate over the exchange's own tables; nothing loads cases into Python. The
same function feeds the dashboard, its CSV exports, the annual summary and ``GET /api/v1/status``, so
the page and the API cannot disagree.

How the figures are defined (docs/operations.md says the same for readers of the published numbers):

- **Cases** are locations whose report was not refused (``state != 'rejected'``), counted in the month
  of their **first report** (``confirmed_at``, the origin analyst's confirmation). Filters select cases
  by that month, by origin, by hosting country, by destination member and by legal status.
- **Removed within 3 days** and **referred to police within 3 days** mean at most 72 hours after the
  first report. Their shares are taken over the cases whose outcome is known (``judged``,
  ``judged_police``): first reported at least 3 days before ``now``, or already removed (referred) within
  them. A case reported yesterday and still up has not had its three days yet; counting it would make
  the newest month look worse than it is.
- **Median time to removal** (first report to removal) and **median notice time** (notice sent to
  removal, for cases with both, removal not before the notice) are exact medians in hours, computed in
  SQL with window functions (``row_number`` and ``count`` over the ordered durations; the two middle
  rows averaged when the count is even), which SQLite and PostgreSQL both have.
- **Duplicates avoided** are other members' reports of a location already under action that its
  destination confirmed (``case_reports`` with ``duplicate`` and state ``verified``), for the cases the
  filter selects.
- **Member health** (backlog, oldest undelivered, failing deliveries, dead letters, last contact,
  certificate expiry) is the delivery queues' own view (``federation.delivery.describe_outbox``) and is
  never filtered; each member's **content** figures are those of the cases routed to it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal, or_, select

from exchange.cases.models import REJECTED, VERIFIED, Case, CaseReport
from exchange.members.models import Member
from exchange.messaging.models import Outbox, Peer
from exchange.status.filters import Filters
from federation.delivery import describe_outbox
from service.database import DBSession

THREE_DAYS_HOURS = 72
RECENT_REFUSALS = 50


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _share(part: int, whole: int) -> float | None:
    """A percentage to one decimal, or None when there is nothing to divide by."""
    return round(100 * part / whole, 1) if whole else None


@dataclass(frozen=True)
class _Sql:
    """The few expressions that differ between SQLite and PostgreSQL."""

    dialect: str

    def hours(self, start: Any, end: Any) -> ColumnElement[Any]:
        """Hours from ``start`` to ``end`` as a float (NULL when either is NULL)."""
        if self.dialect == "sqlite":
            # UTCDateTime keeps naive UTC text on SQLite; julianday() reads it, fractions of a second included.
            # Julian days are floats: rounded to a few milliseconds, exactly 72 hours stays 72, not 72.0000001.
            return func.round((func.julianday(end) - func.julianday(start)) * 24.0, 6)
        return func.extract("epoch", end - start) / 3600.0

    def month(self, column: Any) -> ColumnElement[Any]:
        """``YYYY-MM`` of a UTC timestamp."""
        if self.dialect == "sqlite":
            # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff': the first seven characters are the month.
            return func.substr(column, 1, 7)
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")


def _dialect(session: DBSession) -> _Sql:
    return _Sql(session.get_bind().dialect.name)


def case_filter(filters: Filters) -> list[ColumnElement[bool]]:
    """The WHERE clause of the cases a filter selects (refused reports are never cases)."""
    where: list[ColumnElement[bool]] = [Case.state != REJECTED]
    if filters.start is not None:
        where.append(Case.confirmed_at >= filters.start)
    if filters.end is not None:
        where.append(Case.confirmed_at < filters.end)
    if filters.origin:
        where.append(Case.origin == filters.origin)
    if filters.country:
        where.append(Case.hosting_country == filters.country)
    if filters.member:
        where.append(Case.destination == filters.member)
    if filters.legal:
        where.append(Case.legal_status == filters.legal)
    return where


class Figures:
    """The aggregate queries behind every table, for one session, filter and moment."""

    def __init__(self, session: DBSession, filters: Filters, *, now: dt.datetime) -> None:
        self.session = session
        self.filters = filters
        self.now = now
        self.sql = _dialect(session)
        self.where = case_filter(filters)
        self.old = Case.confirmed_at <= now - dt.timedelta(hours=THREE_DAYS_HOURS)

    def _count_if(self, condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    def breakdown(self, key: Any) -> list[dict[str, Any]]:
        """Cases, removals and the 3-day figures per value of ``key``, in one pass."""
        removal = self.sql.hours(Case.confirmed_at, Case.removed_at)
        police = self.sql.hours(Case.confirmed_at, Case.police_notified_at)
        query = (
            select(
                key.label("key"),
                func.count().label("cases"),
                func.count(Case.removed_at).label("removed"),
                self._count_if(or_(self.old, removal <= THREE_DAYS_HOURS)).label("judged"),
                self._count_if(removal <= THREE_DAYS_HOURS).label("removed_3d"),
                self._count_if(or_(self.old, police <= THREE_DAYS_HOURS)).label("judged_police"),
                self._count_if(police <= THREE_DAYS_HOURS).label("police_3d"),
            )
            .where(*self.where)
            .group_by(key)
            .order_by(key)
        )
        return [
            {
                "key": row.key,
                "cases": int(row.cases),
                "removed": int(row.removed),
                "judged": int(row.judged),
                "removed_within_3_days": int(row.removed_3d),
                "share_removed_within_3_days": _share(int(row.removed_3d), int(row.judged)),
                "judged_police": int(row.judged_police),
                "police_within_3_days": int(row.police_3d),
                "share_police_within_3_days": _share(int(row.police_3d), int(row.judged_police)),
            }
            for row in self.session.execute(query)
        ]

    def medians(
        self, duration: ColumnElement[Any], where: list[ColumnElement[bool]], key: Any = None
    ) -> dict[Any, float]:
        """Exact median of ``duration`` (hours) per value of ``key`` (or overall, under the key None).

        The durations are numbered in order within each group and counted; the median is the middle row,
        or the mean of the two middle rows: rows ``(n + 1) / 2`` and ``(n + 2) / 2`` in integer division.
        """
        group = key if key is not None else literal(None)
        ordered = (
            select(
                group.label("key"),
                duration.label("hours"),
                func.row_number().over(partition_by=key, order_by=duration).label("position"),
                func.count().over(partition_by=key).label("n"),
            )
            .where(*where)
            .subquery()
        )
        query = (
            select(ordered.c.key, func.avg(ordered.c.hours))
            .where(or_(ordered.c.position == (ordered.c.n + 1) // 2, ordered.c.position == (ordered.c.n + 2) // 2))
            .group_by(ordered.c.key)
        )
        return {row[0]: round(float(row[1]), 2) for row in self.session.execute(query)}

    def removal_medians(self, key: Any = None) -> dict[Any, float]:
        return self.medians(
            self.sql.hours(Case.confirmed_at, Case.removed_at), [*self.where, Case.removed_at.is_not(None)], key
        )

    def notice_times(self) -> tuple[int, float | None]:
        """How many cases were removed after a notice, and the median hours from notice to removal."""
        where = [*self.where, Case.ntd_sent_at.is_not(None), Case.removed_at >= Case.ntd_sent_at]
        count = self.session.scalar(select(func.count()).select_from(Case).where(*where)) or 0
        median = self.medians(self.sql.hours(Case.ntd_sent_at, Case.removed_at), where).get(None) if count else None
        return int(count), median

    def counts(self, column: Any, *where: ColumnElement[bool]) -> dict[str, int]:
        query = select(column, func.count()).where(*where).group_by(column)
        return {str(key): int(count) for key, count in self.session.execute(query).all()}

    def duplicates_avoided(self) -> int:
        query = (
            select(func.count())
            .select_from(CaseReport)
            .join(Case, Case.id == CaseReport.case_id)
            .where(CaseReport.duplicate.is_(True), CaseReport.state == VERIFIED, *self.where)
        )
        return int(self.session.scalar(query) or 0)


def _keyed(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [{name: row.pop("key"), **row} for row in rows]


def _refusals(session: DBSession) -> dict[str, Any]:
    recent = [
        {"report_id": report_id, "origin": member, "reason": reason, "at": _iso(at), "duplicate": bool(duplicate)}
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
    total = session.scalar(select(func.count()).select_from(CaseReport).where(CaseReport.refused_reason.is_not(None)))
    return {"total": int(total or 0), "recent": recent}


def member_health(session: DBSession) -> dict[str, dict[str, Any]]:
    """Every member's delivery health, in the secretariat's words (never filtered)."""
    members: dict[str, dict[str, Any]] = {}
    for member in session.scalars(select(Member).order_by(Member.id)):
        members[member.id] = {
            "name": member.name,
            "status": member.status,
            "countries": member.countries,
            "fallback": member.is_fallback,
            "backlog": 0,
            "dead_letters": 0,
            "oldest_undelivered": None,
        }
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
    return members


def network_status(session: DBSession, *, now: dt.datetime, filters: Filters | None = None) -> dict[str, Any]:
    """The network-wide status as a JSON-ready dict: the figures of the cases ``filters`` selects.

    ``cases`` holds the headline figures (and the counts by hosting country, legal status, state and
    status that the API has always had); ``months``, ``countries``, ``origins``, ``legal_statuses`` and
    each member's ``content`` are the tables behind the dashboard's charts.
    """
    filters = filters or Filters()
    figures = Figures(session, filters, now=now)
    months = _keyed(figures.breakdown(figures.sql.month(Case.confirmed_at)), "month")
    countries = _keyed(figures.breakdown(Case.hosting_country), "country")
    origins = _keyed(figures.breakdown(Case.origin), "origin")
    legal = _keyed(figures.breakdown(Case.legal_status), "legal_status")
    destinations = {row.pop("key"): row for row in figures.breakdown(Case.destination)}
    member_medians = figures.removal_medians(Case.destination)
    overall = figures.removal_medians().get(None)
    noticed, notice_median = figures.notice_times()

    def total(name: str) -> int:
        return sum(int(row[name]) for row in months)

    judged, removed_3d = total("judged"), total("removed_within_3_days")
    judged_police, police_3d = total("judged_police"), total("police_within_3_days")
    members = member_health(session)
    for member_id, entry in members.items():
        content = destinations.pop(member_id, None) or {
            "cases": 0,
            "removed": 0,
            "judged": 0,
            "removed_within_3_days": 0,
            "share_removed_within_3_days": None,
            "judged_police": 0,
            "police_within_3_days": 0,
            "share_police_within_3_days": None,
        }
        entry["content"] = {**content, "median_hours_to_removal": member_medians.get(member_id)}
    for member_id, content in destinations.items():  # Cases routed to a member that has left the directory.
        members[member_id] = {"content": {**content, "median_hours_to_removal": member_medians.get(member_id)}}
    return {
        "generated_at": now.isoformat(),
        "filters": filters.args(),
        "cases": {
            "total": total("cases"),
            "by_hosting_country": {row["country"]: row["cases"] for row in countries},
            "by_legal_status": {row["legal_status"]: row["cases"] for row in legal},
            "by_origin": {row["origin"]: row["cases"] for row in origins},
            "by_state": figures.counts(Case.state, *figures.where[1:]),
            "by_status": figures.counts(Case.status, *figures.where, Case.status.is_not(None)),
            "duplicates_avoided": figures.duplicates_avoided(),
            "removed": total("removed"),
            "judged": judged,
            "removed_within_3_days": removed_3d,
            "share_removed_within_3_days": _share(removed_3d, judged),
            "median_hours_to_removal": overall,
            "police_within_3_days": police_3d,
            "judged_police": judged_police,
            "share_police_within_3_days": _share(police_3d, judged_police),
            "removed_after_notice": noticed,
            "median_hours_notice_to_removal": notice_median,
        },
        "months": months,
        "countries": countries,
        "origins": origins,
        "legal_statuses": legal,
        "refusals": _refusals(session),
        "members": members,
    }


def member_entry(session: DBSession, member_id: str, *, now: dt.datetime) -> dict[str, Any]:
    """A member's own health (the network surface's ``GET /v1/status``): its queue, contact, certificate."""
    entry = member_health(session).get(member_id, {})
    return {"generated_at": now.isoformat(), "members": {member_id: entry}}


def years_with_cases(session: DBSession) -> list[int]:
    """The calendar years that have cases, newest first (from the oldest and newest first report)."""
    # Over every case (refused ones too), so both ends come straight from the index on confirmed_at.
    first, last = session.execute(select(func.min(Case.confirmed_at), func.max(Case.confirmed_at))).one()
    if first is None or last is None:
        return []
    return list(range(last.year, first.year - 1, -1))
