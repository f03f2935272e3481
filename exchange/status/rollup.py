"""Keeping the network status cells current: the ``status-rollup`` job and the full rebuild.

How it works:

- **What changes a figure.** Every figure of a case depends on its own row (state, route, timestamps,
  latest status) and its verified duplicates, and it is counted in the month of its first report
  (``confirmed_at``), which never changes. Every change the exchange makes to a case, or to a report of
  it, is recorded in the audit trail in the same transaction (``exchange.cases.services.CaseBook._record``:
  ``object_type`` ``'case'``, ``object_id`` the case id), and the trail's sequence numbers follow commit
  order (appends are serialised by the chain head's lock: see audit.services).
- **The job.** :func:`roll_up` runs in two transactions. The first only reads (:func:`survey`; on
  SQLite it holds no lock, so members' messages are not held up while a month is aggregated): the
  highest sequence number now in the trail, the months of the cases named by the entries after the one
  it processed last, those months' cells and histograms (the database groups the cases by full key, the
  coarser levels are summed in Python), compared with the stored rows of those months. The second
  (:func:`apply`) writes only the rows that differ (a minute of changes alters a few of a month's
  thousands of cells), replaces the named cases' rows in ``status_recent`` (by primary key, in SQL) and
  drops those older than 72 hours, and stores the new sequence number with the time. A change
  committed after the head was read has a higher number and is picked up by the next run;
  recomputing a month twice gives the same rows, so nothing is counted twice or lost. If another run
  stored a position in between, the write is skipped and the next run starts from that position.
- **The rebuild.** With no stored position (a new or just-migrated exchange), or when asked
  (:func:`rebuild`, ``hotline-exchange tasks run status-rollup`` on an empty position, the demo's
  history), every month is recomputed the same way in one pass. Rows written behind the audit trail's
  back (bulk loads: the demo history, the benchmark store) need a rebuild.
- **The invariant.** After a run, the cells equal an aggregation of ``cases`` as the run's reading
  transaction saw it, and ``status_recent`` holds every case first reported within 72 hours before that
  moment. Pages sum cells: their figures are those of the moment the job last ran (shown as "as of"). On
  PostgreSQL a transaction-level advisory lock keeps two runs' writes (the worker and a command) from
  interleaving; SQLite serialises writers anyway; either way the later one finds the position moved.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    text,
)

from exchange.audit.models import AuditEntry
from exchange.cases.models import CONFIRMED, PROVISIONAL, REJECTED, VERIFIED, Case, CaseReport
from exchange.messaging.models import ServiceState
from exchange.status.models import LEVEL_KEYS, StatusCell, StatusHistogram, StatusRecent
from service.database import DBSession, reading

STATE_NAME = "status_rollup"
"""The ``service_state`` row holding the last audit sequence number processed and when."""
THREE_DAYS_HOURS = 72
KEYS = ("origin", "hosting_country", "destination")
COUNTS: tuple[str, ...] = (
    "cases",
    "removed",
    "removed_3d",
    "police_3d",
    "noticed",
    "duplicates",
    "provisional",
    "confirmed",
    "rejected",
)


@dataclass(frozen=True)
class RollupState:
    """Where the job stands: the last audit entry whose changes the cells hold, and when it ran."""

    seq: int
    at: dt.datetime


@dataclass(frozen=True)
class Sql:
    """The few expressions that differ between SQLite and PostgreSQL."""

    dialect: str

    def hours(self, start: Any, end: Any) -> ColumnElement[Any]:
        """Hours from ``start`` to ``end`` as a float (NULL when either is NULL)."""
        if self.dialect == "sqlite":
            # UTCDateTime keeps naive UTC text on SQLite; julianday() reads it, fractions of a second included.
            # Julian days are floats: rounded to a few milliseconds, exactly 72 hours stays 72, not 72.0000001.
            return func.round((func.julianday(end) - func.julianday(start)) * 24.0, 6)
        return func.extract("epoch", end - start) / 3600.0

    def whole_hours(self, start: Any, end: Any) -> ColumnElement[Any]:
        """The hours from ``start`` to ``end`` rounded down (29 h 59 min is 29), as text: a histogram bucket."""
        hours = self.hours(start, end)
        if self.dialect == "sqlite":
            # CAST truncates towards zero; a negative fraction (a removal dated before its report) goes down.
            truncated = cast(hours, Integer)
            floored: ColumnElement[Any] = case((hours < truncated, truncated - 1), else_=truncated)
        else:
            floored = cast(func.floor(hours), Integer)
        return cast(floored, String)

    def month(self, column: Any) -> ColumnElement[Any]:
        """``YYYY-MM`` of a UTC timestamp."""
        if self.dialect == "sqlite":
            # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff': the first seven characters are the month.
            return func.substr(column, 1, 7)
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")


def dialect(session: DBSession) -> Sql:
    return Sql(session.get_bind().dialect.name)


def month_range(month: str) -> tuple[dt.datetime, dt.datetime]:
    """The first instant of ``YYYY-MM`` and of the month after it (UTC)."""
    year, number = int(month[:4]), int(month[5:7])
    start = dt.datetime(year, number, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=dt.UTC)
    return start, end


# Position ------------------------------------------------------------------------------------------


def read_position(session: DBSession) -> RollupState | None:
    """The job's stored position, or None before the first run."""
    value = session.scalar(select(ServiceState.value).where(ServiceState.name == STATE_NAME))
    if not value:
        return None
    stored = json.loads(value)
    return RollupState(seq=int(stored["seq"]), at=dt.datetime.fromisoformat(stored["at"]))


def _store_position(session: DBSession, state: RollupState) -> None:
    value = json.dumps({"seq": state.seq, "at": state.at.isoformat()})
    row = session.get(ServiceState, STATE_NAME)
    if row is None:
        session.add(ServiceState(name=STATE_NAME, value=value, updated_at=state.at))
    else:
        row.value, row.updated_at = value, state.at
    session.flush()


def _lock(session: DBSession) -> None:
    """PostgreSQL: one run at a time (held to the end of the transaction). SQLite has one writer anyway."""
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(STATE_NAME.encode()).digest()[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


# Recomputing ---------------------------------------------------------------------------------------


def _in_months(column: Any, months: list[str] | None) -> list[ColumnElement[bool]]:
    """``cases.confirmed_at`` within any of ``months`` (a range per month: the index on it is used)."""
    if months is None:
        return []
    return [or_(*(and_(column >= start, column < end) for start, end in map(month_range, months)))]


def _cell_months(column: Any, months: list[str] | None) -> list[ColumnElement[bool]]:
    return [] if months is None else [column.in_(months)]


def _level_key(row: dict[str, Any], level: int) -> tuple[str, ...]:
    """The key columns of ``row`` that ``level`` groups by, ``''`` for the others."""
    return tuple(row[name] if name in LEVEL_KEYS[level] else "" for name in KEYS)


def aggregate(session: DBSession, months: list[str] | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The cell and histogram rows of ``months`` (every month when None), aggregated from ``cases``.

    Only reads: the database groups the cases by full key (and by bucket, for the histograms); the coarser
    levels are sums of those rows, made here, so the write that follows is short.
    """
    sql = dialect(session)
    where = _in_months(Case.confirmed_at, months)
    month = sql.month(Case.confirmed_at).label("month")
    live = Case.state != REJECTED
    removal = sql.hours(Case.confirmed_at, Case.removed_at)
    police = sql.hours(Case.confirmed_at, Case.police_notified_at)
    noticed = and_(live, Case.ntd_sent_at.is_not(None), Case.removed_at >= Case.ntd_sent_at)
    verified = (
        select(CaseReport.case_id, func.count().label("n"))
        .where(CaseReport.state == VERIFIED, CaseReport.duplicate.is_(True))
        .group_by(CaseReport.case_id)
        .subquery()
    )

    def count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    keys = [month, Case.legal_status, Case.origin, Case.hosting_country, Case.destination]
    full = (
        select(
            *keys,
            count_if(live),
            count_if(and_(live, Case.removed_at.is_not(None))),
            count_if(and_(live, removal <= THREE_DAYS_HOURS)),
            count_if(and_(live, police <= THREE_DAYS_HOURS)),
            count_if(noticed),
            func.coalesce(func.sum(case((live, func.coalesce(verified.c.n, 0)), else_=0)), 0),
            count_if(Case.state == PROVISIONAL),
            count_if(Case.state == CONFIRMED),
            count_if(Case.state == REJECTED),
        )
        .select_from(Case)
        .outerjoin(verified, verified.c.case_id == Case.id)
        .where(*where)
        .group_by(*keys)
    )
    names = ["month", "legal_status", *KEYS]
    cells: dict[tuple[Any, ...], list[int]] = {}
    for found in session.execute(full):
        row = dict(zip(names, found[: len(names)], strict=True))
        counts = [int(value) for value in found[len(names) :]]
        for level in range(4):
            key = (level, row["month"], row["legal_status"], *_level_key(row, level))
            summed = cells.setdefault(key, [0] * len(COUNTS))
            for index, value in enumerate(counts):
                summed[index] += value
    cell_rows = [
        dict(zip(["level", "month", "legal_status", *KEYS, *COUNTS], (*key, *counts), strict=True))
        for key, counts in cells.items()
    ]

    # The histograms: cases per full key and bucket (one pass over the cases per kind), summed per level.
    buckets = {
        "removal": (sql.whole_hours(Case.confirmed_at, Case.removed_at), and_(live, Case.removed_at.is_not(None))),
        "notice": (sql.whole_hours(Case.ntd_sent_at, Case.removed_at), noticed),
        "status": (Case.status, and_(live, Case.status.is_not(None))),
    }
    packed: dict[tuple[Any, ...], dict[str, int]] = {}
    for kind, (bucket, condition) in buckets.items():
        per_bucket = select(*keys, bucket, func.count()).where(condition, *where).group_by(*keys, bucket)
        for found in session.execute(per_bucket):
            row = dict(zip(names, found[: len(names)], strict=True))
            label, n = str(found[len(names)]), int(found[len(names) + 1])
            for level in range(4):
                key = (level, kind, row["month"], row["legal_status"], *_level_key(row, level))
                histogram = packed.setdefault(key, {})
                histogram[label] = histogram.get(label, 0) + n
    histogram_rows = [
        dict(zip(["level", "kind", "month", "legal_status", *KEYS], key, strict=True), counts=json.dumps(counts))
        for key, counts in packed.items()
    ]
    return cell_rows, histogram_rows


def refresh_recent(session: DBSession, *, now: dt.datetime, touched: Any = None) -> None:
    """Bring ``status_recent`` up to ``now``: the cases first reported in the 72 hours before it, not
    refused. Replaces every row, or (``touched``: a query of case ids) only the rows of those cases, and
    drops the rows that have aged out. One ``INSERT … SELECT`` by primary key per case named: the rows
    never pass through Python (a minute of a busy network names tens of thousands of cases)."""
    sql = dialect(session)
    cutoff = now - dt.timedelta(hours=THREE_DAYS_HOURS)
    if touched is None:
        session.execute(delete(StatusRecent))
    else:
        session.execute(delete(StatusRecent).where(StatusRecent.case_id.in_(touched)))
        session.execute(delete(StatusRecent).where(StatusRecent.confirmed_at <= cutoff))
    removal = sql.hours(Case.confirmed_at, Case.removed_at)
    police = sql.hours(Case.confirmed_at, Case.police_notified_at)
    recent = select(
        Case.id,
        sql.month(Case.confirmed_at),
        Case.legal_status,
        Case.origin,
        Case.hosting_country,
        Case.destination,
        Case.confirmed_at,
        case((removal <= THREE_DAYS_HOURS, True), else_=False),
        case((police <= THREE_DAYS_HOURS, True), else_=False),
    ).where(Case.state != REJECTED, Case.confirmed_at > cutoff)
    if touched is not None:
        recent = recent.where(Case.id.in_(touched))
    names = ["case_id", "month", "legal_status", *KEYS, "confirmed_at", "removed_3d", "police_3d"]
    session.execute(insert(StatusRecent.__table__).from_select(names, recent))


# The job -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollupResult:
    """What one run did: the months it recomputed (None: all of them) and the position it reached."""

    months: list[str] | None
    seq: int


@dataclass(frozen=True)
class Changes:
    """How one table's rows of the recomputed months differ from the stored ones: the primary keys to
    delete (rows gone or changed) and the rows to insert (new or changed)."""

    stale: list[dict[str, Any]]
    fresh: list[dict[str, Any]]


@dataclass(frozen=True)
class Survey:
    """What a run read, to be written in one short transaction.

    ``start`` is the position the survey began from (None: none stored), ``head`` the audit entry it
    reached; ``months`` the months recomputed (None: all); ``cells``, ``histograms`` their rows; and,
    for an incremental run, ``changes``: how those rows differ from the stored ones (a minute of changes
    alters a few hundred of a month's thousands of cells, and only those are written).
    """

    start: int | None
    head: int
    months: list[str] | None
    cells: list[dict[str, Any]]
    histograms: list[dict[str, Any]]
    changes: tuple[Changes, Changes] | None = None


def _differences(session: DBSession, table: Any, rows: list[dict[str, Any]], months: list[str]) -> Changes:
    """Compare ``rows`` with the stored rows of ``months`` in ``table`` (histogram counts as JSON values)."""
    keys = [column.name for column in table.primary_key.columns]

    def comparable(row: Any) -> dict[str, Any]:
        found = dict(row)
        if "counts" in found and isinstance(found["counts"], str):
            found["counts"] = json.loads(found["counts"])
        return found

    stored = {
        tuple(row[name] for name in keys): comparable(row)
        for row in session.execute(select(table).where(*_cell_months(table.c.month, months))).mappings()
    }
    stale, fresh = [], []
    for row in rows:
        key = tuple(row[name] for name in keys)
        before = stored.pop(key, None)
        if before == comparable(row):
            continue
        if before is not None:
            stale.append(dict(zip(keys, key, strict=True)))
        fresh.append(row)
    stale += [dict(zip(keys, key, strict=True)) for key in stored]
    return Changes(stale=stale, fresh=fresh)


def _delete_rows(session: DBSession, table: Any, keys: list[dict[str, Any]]) -> None:
    """Delete the rows of ``table`` with these primary keys (one statement, executed for each)."""
    if keys:
        columns = list(table.primary_key.columns)
        statement = delete(table).where(*(column == bindparam(f"key_{column.name}") for column in columns))
        session.connection().execute(statement, [{f"key_{name}": value for name, value in key.items()} for key in keys])


def _touched(after: int, upto: int) -> Any:
    """The ids of the cases named by audit entries ``after`` < seq <= ``upto``."""
    return select(AuditEntry.object_id).where(
        AuditEntry.seq > after, AuditEntry.seq <= upto, AuditEntry.object_type == "case"
    )


def changed_months(session: DBSession, after: int, upto: int) -> list[str]:
    """The months of first report of the cases named by audit entries ``after`` < seq <= ``upto``."""
    month = dialect(session).month(Case.confirmed_at)
    query = select(month).where(Case.id.in_(_touched(after, upto))).distinct().order_by(month)
    return [str(value) for value in session.scalars(query)]


def survey(session: DBSession, *, now: dt.datetime, full: bool = False) -> Survey:
    """Read what a run must write, without writing (so on SQLite without holding the write lock)."""
    with reading(session):
        state = read_position(session)
        start = None if state is None else state.seq
        # The head first: every entry up to it is committed (appends hold the head's lock until they
        # commit), and whatever commits later is numbered above it and left to the next run.
        head = int(session.scalar(select(func.max(AuditEntry.seq))) or 0)
        if full or start is None:
            cells, histograms = aggregate(session, None)
            return Survey(start, head, None, cells, histograms)
        if head == start:
            return Survey(start, head, [], [], [])
        months = changed_months(session, start, head)
        if not months:
            return Survey(start, head, [], [], [])
        cells, histograms = aggregate(session, months)
        changes = (
            _differences(session, StatusCell.__table__, cells, months),
            _differences(session, StatusHistogram.__table__, histograms, months),
        )
        return Survey(start, head, months, cells, histograms, changes)


def apply(session: DBSession, found: Survey, *, now: dt.datetime) -> RollupResult:
    """Write a survey's rows and position, if no other run moved the position since it was read.

    A run that lost that race writes nothing (the next run starts from the position the other stored):
    an incremental survey only holds the months changed since its own start.
    """
    _lock(session)
    state = read_position(session)
    stored = None if state is None else state.seq
    if stored != found.start and not (found.months is None and (stored is None or stored <= found.head)):
        return RollupResult(months=[], seq=stored or 0)
    months = found.months
    if found.changes is not None and stored == found.start:
        # The stored rows are those the survey compared with: write only the differences.
        for table, changes in zip((StatusCell.__table__, StatusHistogram.__table__), found.changes, strict=True):
            _delete_rows(session, table, changes.stale)
            if changes.fresh:
                session.execute(insert(table), changes.fresh)
    elif months is None or months:
        session.execute(delete(StatusCell).where(*_cell_months(StatusCell.month, months)))
        session.execute(delete(StatusHistogram).where(*_cell_months(StatusHistogram.month, months)))
        if found.cells:
            session.execute(insert(StatusCell.__table__), found.cells)
        if found.histograms:
            session.execute(insert(StatusHistogram.__table__), found.histograms)
    # Every run drops the rows that aged out; an incremental one replaces the rows of the cases named.
    refresh_recent(session, now=now, touched=None if months is None else _touched(found.start or 0, found.head))
    _store_position(session, RollupState(seq=found.head, at=now))
    return RollupResult(months=months, seq=found.head)


def roll_up(session: DBSession, *, now: dt.datetime, full: bool = False) -> RollupResult:
    """Bring the cells up to date with the audit trail (every month when ``full`` or never run before).

    Reads in one transaction and writes in the next (inside a transaction already begun, both in that
    one); flushes the write, and the caller commits it (the cells, ``status_recent`` and the position).
    """
    return apply(session, survey(session, now=now, full=full), now=now)


def rebuild(session: DBSession, *, now: dt.datetime) -> RollupResult:
    """Recompute every month (after a bulk load, or to repair): the job's own work, for all of it."""
    return roll_up(session, now=now, full=True)
