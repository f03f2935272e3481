"""Network-wide figures: volumes, time to removal, police referral, notice time, duplicates, member health.

Every figure is a sum over the summary cells the ``status-rollup`` job keeps (exchange.status.models and
exchange.status.rollup): SQL aggregation over a few thousand cells instead of a pass over every case, so
a page costs the same at a million cases as at a thousand. The figures are those of the moment the job
last ran (``as_of``; every ``STATUS_ROLLUP_SECONDS``, a minute by default). The same function feeds the
dashboard, its CSV exports, the annual summary and ``GET /api/v1/status``, so the page and the API cannot
disagree.

How the figures are defined (docs/operations.md says the same for readers of the published numbers):

- **Cases** are locations whose report was not refused (``state != 'rejected'``), counted in the month
  of their **first report** (``confirmed_at``, the origin analyst's confirmation). Filters select cases
  by that month, by origin, by hosting country, by destination member and by legal status.
- **Removed within 3 days** and **referred to police within 3 days** mean at most 72 hours after the
  first report (exact: counted per case when the cells are built). Their shares are taken over the cases
  whose outcome is known (``judged``, ``judged_police``): first reported at least 3 days before ``now``,
  or already removed (referred) within them. A case reported yesterday and still up has not had its
  three days yet; counting it would make the newest month look worse than it is. Only the cases first
  reported in the last 72 hours can be unjudged, so the cells count every case and
  ``status_recent`` (the rollup's copy of the cases first reported in the 72 hours before it ran) gives
  the rest: for each group, ``judged = cases - young + young_removed_3d``, where ``young`` counts the
  group's cases in ``status_recent`` first reported after ``now - 72 h`` and ``young_removed_3d`` those
  of them removed within 72 hours (likewise for police). Both come from the same run of the job, so a
  share never mixes two moments; ``now`` only decides which of the copied cases are still young.
- **Median time to removal** (first report to removal) and **median notice time** (notice sent to
  removal, for cases with both, removal not before the notice) are medians **exact to the hour**: each
  duration is counted in whole hours, rounded down (29 h 59 min counts as 29), in per-cell histograms;
  the median is the middle of those whole-hour values in order, or the mean of the two middle ones when
  the count is even (rows ``(n + 1) // 2`` and ``(n + 2) // 2``).
- **Duplicates avoided** are other members' reports of a location already under action that its
  destination confirmed (``case_reports`` with ``duplicate`` and state ``verified``), for the cases the
  filter selects.
- **Member health** (backlog, oldest undelivered, failing deliveries, dead letters, last contact,
  certificate expiry) is the delivery queues' own view (``federation.delivery.describe_outbox``), read
  live on every request and never filtered; each member's **content** figures are those of the cases
  routed to it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import ColumnElement, Connection, Integer, cast, func, select
from sqlalchemy.orm import Session

from exchange.cases.models import Case, CaseReport
from exchange.members.models import Member
from exchange.messaging.models import Outbox, Peer
from exchange.status.filters import Filters
from exchange.status.models import LEVEL_KEYS, StatusCell, StatusHistogram, StatusRecent
from exchange.status.rollup import COUNTS, THREE_DAYS_HOURS, read_position
from federation.delivery import describe_outbox
from service.database import DBSession

RECENT_REFUSALS = 50
BREAKDOWN = ("cases", "removed", "removed_3d", "police_3d")
TOTALS = COUNTS
"""Every count a cell holds, summed for the totals (the rollup's own list)."""


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _share(part: int, whole: int) -> float | None:
    """A percentage to one decimal, or None when there is nothing to divide by."""
    return round(100 * part / whole, 1) if whole else None


def median(histogram: Counter[int]) -> float | None:
    """The median of a histogram of whole hours: the middle value, or the mean of the two middle values."""
    n = sum(histogram.values())
    if not n:
        return None
    wanted = {(n + 1) // 2, (n + 2) // 2}
    found: list[int] = []
    seen = 0
    for hours in sorted(histogram):
        before, seen = seen, seen + histogram[hours]
        found += [hours for position in sorted(wanted) if before < position <= seen]
        if len(found) == len(wanted):
            break
    return round(sum(found) / len(found), 2)


def level_for(filters: Filters, *keys: str) -> int:
    """The coarsest cell level that has every key the filter selects on and ``keys`` group by."""
    needed = {*keys}
    if filters.origin:
        needed.add("origin")
    if filters.country or filters.member:
        needed.add("destination")
    origin = "origin" in needed
    route = bool(needed & {"hosting_country", "destination"})
    return next(
        level
        for level, names in LEVEL_KEYS.items()
        if origin <= ("origin" in names) and route <= ("destination" in names)
    )


def _selecting(table: Any, filters: Filters) -> list[ColumnElement[bool]]:
    """The WHERE clause selecting the rows of ``table`` (a cell table or ``status_recent``) a filter keeps."""
    where: list[ColumnElement[bool]] = []
    if filters.start is not None:
        where.append(table.month >= filters.start.strftime("%Y-%m"))
    if filters.end is not None:
        where.append(table.month < filters.end.strftime("%Y-%m"))
    for name, value in (
        ("origin", filters.origin),
        ("hosting_country", filters.country),
        ("destination", filters.member),
        ("legal_status", filters.legal),
    ):
        if value:
            where.append(getattr(table, name) == value)
    return where


class Figures:
    """The sums behind every table, for one session, filter and moment."""

    def __init__(self, session: DBSession, filters: Filters, *, now: dt.datetime) -> None:
        self.session = session
        self.filters = filters
        self.now = now

    def _cells(self, *keys: str) -> list[ColumnElement[bool]]:
        return [StatusCell.level == level_for(self.filters, *keys), *_selecting(StatusCell, self.filters)]

    def totals(self) -> dict[str, int]:
        """Every count summed over the cells the filter selects."""
        query = select(*(func.coalesce(func.sum(getattr(StatusCell, name)), 0) for name in TOTALS))
        row = self.session.execute(query.where(*self._cells())).one()
        return {name: int(value) for name, value in zip(TOTALS, row, strict=True)}

    def young(self, key: str) -> dict[Any, tuple[int, int, int]]:
        """Per value of ``key``: the cases still in their first 72 hours, those removed and those referred."""
        column = getattr(StatusRecent, key)
        query = (
            select(
                column,
                func.count(),
                func.sum(cast(StatusRecent.removed_3d, Integer)),
                func.sum(cast(StatusRecent.police_3d, Integer)),
            )
            .where(
                StatusRecent.confirmed_at > self.now - dt.timedelta(hours=THREE_DAYS_HOURS),
                *_selecting(StatusRecent, self.filters),
            )
            .group_by(column)
        )
        return {row[0]: (int(row[1]), int(row[2] or 0), int(row[3] or 0)) for row in self.session.execute(query)}

    def breakdown(self, key: str) -> list[dict[str, Any]]:
        """Cases, removals and the 3-day figures per value of ``key`` (a cell column)."""
        column = getattr(StatusCell, key)
        query = (
            select(column, *(func.sum(getattr(StatusCell, name)) for name in BREAKDOWN))
            .where(*self._cells(key))
            .group_by(column)
            .having(func.sum(StatusCell.cases) > 0)
            .order_by(column)
        )
        young = self.young(key)
        out = []
        for value, cases, removed, removed_3d, police_3d in self.session.execute(query):
            recent, recent_removed, recent_police = young.get(value, (0, 0, 0))
            judged = int(cases) - recent + recent_removed
            judged_police = int(cases) - recent + recent_police
            out.append(
                {
                    "key": value,
                    "cases": int(cases),
                    "removed": int(removed),
                    "judged": judged,
                    "removed_within_3_days": int(removed_3d),
                    "share_removed_within_3_days": _share(int(removed_3d), judged),
                    "judged_police": judged_police,
                    "police_within_3_days": int(police_3d),
                    "share_police_within_3_days": _share(int(police_3d), judged_police),
                }
            )
        return out

    def histograms(self, kind: str, key: str | None = None) -> dict[Any, Counter[Any]]:
        """The ``kind`` histogram summed per value of ``key`` (or overall, under the key None)."""
        keys = (key,) if key else ()
        column = getattr(StatusHistogram, key) if key else None
        query = select(StatusHistogram.counts if column is None else column, StatusHistogram.counts).where(
            StatusHistogram.level == level_for(self.filters, *keys),
            StatusHistogram.kind == kind,
            *_selecting(StatusHistogram, self.filters),
        )
        merged: dict[Any, Counter[Any]] = {}
        for row in self.session.execute(query):
            group = merged.setdefault(row[0] if column is not None else None, Counter())
            get = group.get
            for bucket, count in json.loads(row[-1]).items():
                group[bucket] = get(bucket, 0) + count
        return merged

    def medians(self, kind: str, key: str | None = None) -> dict[Any, float]:
        """The hour-exact median of the ``kind`` durations per value of ``key`` (or overall, under None)."""
        out = {}
        for group, counts in self.histograms(kind, key).items():
            value = median(Counter({int(hours): n for hours, n in counts.items()}))
            if value is not None:
                out[group] = value
        return out


def _keyed(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [{name: row.pop("key"), **row} for row in rows]


def _refusals(session: DBSession) -> dict[str, Any]:
    """Every refused report: the total and the latest ones (read live, from one partial index).

    A report is refused in two ways (exchange.cases.services): a duplicate the destination refused or that
    could not go on (state ``refused``), or the report that opened a case that was then rejected; either
    way, and only then, it carries a ``refused_reason`` (a dead letter re-queued clears it). The index
    ``ix_case_reports_refused`` holds exactly those rows, by ``settled_at``.
    """
    refused = CaseReport.refused_reason.is_not(None)
    total = session.scalar(select(func.count()).select_from(CaseReport).where(refused)) or 0
    rows = session.execute(
        select(
            CaseReport.report_id,
            CaseReport.member,
            CaseReport.refused_reason,
            CaseReport.settled_at,
            CaseReport.duplicate,
        )
        .where(refused)
        .order_by(CaseReport.settled_at.desc())
        .limit(RECENT_REFUSALS)
    ).all()
    recent = [
        {"report_id": report_id, "origin": member, "reason": reason, "at": _iso(at), "duplicate": bool(duplicate)}
        for report_id, member, reason, at, duplicate in rows
    ]
    return {"total": int(total), "recent": recent}


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
    for member_id, queue in describe_outbox(session, Outbox, Peer, destinations=list(members)).items():
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


@contextmanager
def _snapshot(session: DBSession) -> Iterator[DBSession]:
    """A session whose reads all see one moment, so no figure mixes two runs of the rollup job.

    SQLite: the caller's own (every transaction there begins with ``BEGIN IMMEDIATE``: one snapshot).
    PostgreSQL: the caller's transaction is READ COMMITTED, where each statement sees the latest commit;
    the figures are read in a read-only REPEATABLE READ transaction on a connection of their own.
    """
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        yield session
        return
    engine = bind.engine if isinstance(bind, Connection) else bind
    with engine.connect() as connection:
        consistent = connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with Session(bind=consistent) as snapshot:
            yield snapshot


def network_status(
    session: DBSession,
    *,
    now: dt.datetime,
    filters: Filters | None = None,
    tables: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The network-wide status as a JSON-ready dict: the figures of the cases ``filters`` selects.

    ``cases`` holds the headline figures (and the counts by hosting country, legal status, state and
    status that the API has always had); ``months``, ``countries``, ``origins``, ``legal_statuses`` and
    each member's ``content`` are the tables behind the dashboard's charts. ``tables`` names the parts
    wanted (of :data:`TABLES`; all of them by default), so one CSV computes only its own table.
    """
    with _snapshot(session) as snapshot:
        return _network_status(snapshot, now=now, filters=filters, wanted=tuple(tables or TABLES))


TABLES = ("cases", "months", "countries", "origins", "legal_statuses", "refusals", "members")
"""The parts of the network status; a caller that needs fewer (one CSV) asks for them by name."""

_EMPTY_CONTENT = {
    "cases": 0,
    "removed": 0,
    "judged": 0,
    "removed_within_3_days": 0,
    "share_removed_within_3_days": None,
    "judged_police": 0,
    "police_within_3_days": 0,
    "share_police_within_3_days": None,
}


def _members(session: DBSession, figures: Figures) -> dict[str, dict[str, Any]]:
    """Every member's health, with the content figures of the cases routed to it."""
    destinations = {row.pop("key"): row for row in figures.breakdown("destination")}
    member_medians = figures.medians("removal", "destination")
    members = member_health(session)
    for member_id, entry in members.items():
        content = destinations.pop(member_id, None) or dict(_EMPTY_CONTENT)
        entry["content"] = {**content, "median_hours_to_removal": member_medians.get(member_id)}
    for member_id, content in destinations.items():  # Cases routed to a member that has left the directory.
        members[member_id] = {"content": {**content, "median_hours_to_removal": member_medians.get(member_id)}}
    return members


def _cases(figures: Figures, tables: dict[str, Any]) -> dict[str, Any]:
    """The headline figures, from the breakdowns already made and the cells' totals."""
    totals = figures.totals()
    statuses = figures.histograms("status").get(None, Counter())

    def total(name: str) -> int:
        return sum(int(row[name]) for row in tables["months"])

    judged, removed_3d = total("judged"), total("removed_within_3_days")
    judged_police, police_3d = total("judged_police"), total("police_within_3_days")
    return {
        "total": totals["cases"],
        "by_hosting_country": {row["country"]: row["cases"] for row in tables["countries"]},
        "by_legal_status": {row["legal_status"]: row["cases"] for row in tables["legal_statuses"]},
        "by_origin": {row["origin"]: row["cases"] for row in tables["origins"]},
        "by_state": {name: totals[name] for name in ("confirmed", "provisional", "rejected") if totals[name]},
        "by_status": {str(name): int(count) for name, count in sorted(statuses.items()) if count},
        "duplicates_avoided": totals["duplicates"],
        "removed": totals["removed"],
        "judged": judged,
        "removed_within_3_days": removed_3d,
        "share_removed_within_3_days": _share(removed_3d, judged),
        "median_hours_to_removal": figures.medians("removal").get(None),
        "police_within_3_days": police_3d,
        "judged_police": judged_police,
        "share_police_within_3_days": _share(police_3d, judged_police),
        "removed_after_notice": totals["noticed"],
        "median_hours_notice_to_removal": figures.medians("notice").get(None),
    }


def _network_status(
    session: DBSession, *, now: dt.datetime, filters: Filters | None, wanted: tuple[str, ...]
) -> dict[str, Any]:
    filters = filters or Filters()
    figures = Figures(session, filters, now=now)
    position = read_position(session)
    out: dict[str, Any] = {
        "generated_at": now.isoformat(),
        "as_of": position.at.isoformat() if position else None,
        "filters": filters.args(),
    }
    tables: dict[str, Any] = {}
    breakdowns = {"months": "month", "countries": "hosting_country", "origins": "origin"}
    breakdowns["legal_statuses"] = "legal_status"
    for name, key in breakdowns.items():
        if name in wanted or "cases" in wanted:
            tables[name] = _keyed(figures.breakdown(key), key if key != "hosting_country" else "country")
    if "cases" in wanted:
        out["cases"] = _cases(figures, tables)
    out.update({name: rows for name, rows in tables.items() if name in wanted})
    if "refusals" in wanted:
        out["refusals"] = _refusals(session)
    if "members" in wanted:
        out["members"] = _members(session, figures)
    return out


def member_entry(session: DBSession, member_id: str, *, now: dt.datetime) -> dict[str, Any]:
    """A member's own health (the network surface's ``GET /v1/status``): its queue, contact, certificate."""
    entry = member_health(session).get(member_id, {})
    return {"generated_at": now.isoformat(), "members": {member_id: entry}}


def years_with_cases(session: DBSession) -> list[int]:
    """The calendar years that have cases, newest first (from the oldest and newest first report)."""
    # Over every case (refused ones too), so both ends come straight from the index on confirmed_at: one
    # query each, since SQLite reads a lone min() or max() from an index but scans it for both together.
    first = session.scalar(select(func.min(Case.confirmed_at)))
    last = session.scalar(select(func.max(Case.confirmed_at)))
    if first is None or last is None:
        return []
    return list(range(last.year, first.year - 1, -1))
