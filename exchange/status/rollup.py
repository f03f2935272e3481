"""Keeping the network status cells current: the ``status-rollup`` job and the full rebuild.

How it works:

- **What changes a figure.** Every figure of a case depends on its own row (state, route, timestamps,
  latest status) and its verified duplicates, and it is counted in the month of its first report
  (``confirmed_at``), which never changes. Every change the exchange makes to a case, or to a report of
  it, is recorded in the audit trail in the same transaction (``exchange.cases.services.CaseBook._record``:
  ``object_type`` ``'case'``, ``object_id`` the case id), and the trail's sequence numbers follow commit
  order (appends are serialised by the chain head's lock: see audit.services).
- **The job.** :func:`roll_up` reads the highest sequence number now in the trail, finds the months of
  the cases named by the entries after the one it processed last, and recomputes exactly those months'
  cells and histograms (delete, then insert by SQL aggregation over ``cases``), refreshes
  ``status_recent``, and stores the new sequence number with the time, all in one transaction. A change
  committed while it runs has a higher number and is picked up by the next run; recomputing a month
  twice gives the same rows, so nothing is counted twice or lost.
- **The rebuild.** With no stored position (a new or just-migrated exchange), or when asked
  (:func:`rebuild`, ``hotline-exchange tasks run status-rollup`` on an empty position, the demo's
  history), every month is recomputed the same way in one pass. Rows written behind the audit trail's
  back (bulk loads: the demo history, the benchmark store) need a rebuild.
- **The invariant.** After a run, the cells equal an aggregation of ``cases`` as the run's transaction
  saw it, and ``status_recent`` holds every case first reported within 72 hours before that moment.
  Pages sum cells: their figures are those of the moment the job last ran (shown as "as of"). On
  PostgreSQL a transaction-level advisory lock keeps two runs (the worker and a command) from
  interleaving; SQLite serialises writers anyway.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
)

from exchange.audit.models import AuditEntry
from exchange.cases.models import CONFIRMED, PROVISIONAL, REJECTED, VERIFIED, Case, CaseReport
from exchange.messaging.models import ServiceState
from exchange.status.models import LEVEL_KEYS, StatusCell, StatusHistogram, StatusRecent
from service.database import DBSession

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

_scratch = MetaData()
_hours = Table(
    "status_hours",
    _scratch,
    Column("month", String(7)),
    Column("legal_status", String(32)),
    Column("origin", String(64)),
    Column("hosting_country", String(2)),
    Column("destination", String(64)),
    Column("kind", String(16)),
    Column("bucket", String(32)),
    Column("n", Integer),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
"""Scratch space of one run: case counts per full cell key and bucket, before they are packed per level."""


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

    def pack(self, key: Any, value: Any) -> ColumnElement[Any]:
        """A JSON object of ``key: value`` over the group, as text."""
        if self.dialect == "sqlite":
            return func.json_group_object(key, value)
        return cast(func.json_object_agg(key, value), String)


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


def _level_columns(table: Any, level: int) -> list[Any]:
    """The key columns of ``level`` from ``table``, with ``''`` for the keys the level does not group by."""
    return [getattr(table.c, name) if name in LEVEL_KEYS[level] else literal("").label(name) for name in KEYS]


def recompute(session: DBSession, months: list[str] | None) -> None:
    """Replace the cells and histograms of ``months`` (every month when None) by aggregating ``cases``."""
    sql = dialect(session)
    cells, histograms = StatusCell.__table__, StatusHistogram.__table__
    session.execute(delete(StatusCell).where(*_cell_months(StatusCell.month, months)))
    session.execute(delete(StatusHistogram).where(*_cell_months(StatusHistogram.month, months)))
    where = _in_months(Case.confirmed_at, months)
    month = sql.month(Case.confirmed_at)
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
            literal(3),
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
    names = ["level", "month", "legal_status", *KEYS, *COUNTS]
    session.execute(insert(cells).from_select(names, full))
    for level in (0, 1, 2):
        columns = _level_columns(cells, level)
        grouped = [cells.c.month, cells.c.legal_status, *(c for c in columns if c.name in LEVEL_KEYS[level])]
        coarse = (
            select(
                literal(level),
                cells.c.month,
                cells.c.legal_status,
                *columns,
                *(func.sum(getattr(cells.c, name)) for name in COUNTS),
            )
            .where(cells.c.level == 3, *_cell_months(cells.c.month, months))
            .group_by(*grouped)
        )
        session.execute(insert(cells).from_select(names, coarse))

    # The histograms: per full key and bucket first (one pass over the cases per kind), then packed per level.
    connection = session.connection()
    _hours.drop(connection, checkfirst=True)
    _hours.create(connection)
    buckets = {
        "removal": (sql.whole_hours(Case.confirmed_at, Case.removed_at), and_(live, Case.removed_at.is_not(None))),
        "notice": (sql.whole_hours(Case.ntd_sent_at, Case.removed_at), noticed),
        "status": (Case.status, and_(live, Case.status.is_not(None))),
    }
    for kind, (bucket, condition) in buckets.items():
        per_bucket = select(*keys, literal(kind), bucket, func.count()).where(condition, *where).group_by(*keys, bucket)
        hour_names = ["month", "legal_status", *KEYS, "kind", "bucket", "n"]
        session.execute(insert(_hours).from_select(hour_names, per_bucket))
    for level in range(4):
        columns = _level_columns(_hours, level)
        grouped = [_hours.c.kind, _hours.c.month, _hours.c.legal_status]
        grouped += [c for c in columns if c.name in LEVEL_KEYS[level]]
        summed = (
            select(*grouped, _hours.c.bucket, func.sum(_hours.c.n).label("n")).group_by(*grouped, _hours.c.bucket)
        ).subquery()
        level_keys = [getattr(summed.c, name) for name in LEVEL_KEYS[level]]
        packed = select(
            literal(level),
            summed.c.kind,
            summed.c.month,
            summed.c.legal_status,
            *(getattr(summed.c, name) if name in LEVEL_KEYS[level] else literal("") for name in KEYS),
            sql.pack(summed.c.bucket, summed.c.n),
        ).group_by(summed.c.kind, summed.c.month, summed.c.legal_status, *level_keys)
        histogram_names = ["level", "kind", "month", "legal_status", *KEYS, "counts"]
        session.execute(insert(histograms).from_select(histogram_names, packed))
    _hours.drop(connection)


def refresh_recent(session: DBSession, *, now: dt.datetime) -> None:
    """Copy the cases first reported in the 72 hours before ``now`` (not refused) into ``status_recent``."""
    sql = dialect(session)
    session.execute(delete(StatusRecent))
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
    ).where(Case.state != REJECTED, Case.confirmed_at > now - dt.timedelta(hours=THREE_DAYS_HOURS))
    names = ["case_id", "month", "legal_status", *KEYS, "confirmed_at", "removed_3d", "police_3d"]
    session.execute(insert(StatusRecent.__table__).from_select(names, recent))


# The job -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollupResult:
    """What one run did: the months it recomputed (None: all of them) and the position it reached."""

    months: list[str] | None
    seq: int


def changed_months(session: DBSession, after: int, upto: int) -> list[str]:
    """The months of first report of the cases named by audit entries ``after`` < seq <= ``upto``."""
    touched = select(AuditEntry.object_id).where(
        AuditEntry.seq > after, AuditEntry.seq <= upto, AuditEntry.object_type == "case"
    )
    month = dialect(session).month(Case.confirmed_at)
    query = select(month).where(Case.id.in_(touched)).distinct().order_by(month)
    return [str(value) for value in session.scalars(query)]


def roll_up(session: DBSession, *, now: dt.datetime, full: bool = False) -> RollupResult:
    """Bring the cells up to date with the audit trail (every month when ``full`` or never run before).

    Flushes; the caller commits (one transaction: the cells, ``status_recent`` and the position).
    """
    _lock(session)
    state = None if full else read_position(session)
    # The head first: every entry up to it is committed (appends hold the head's lock until they commit),
    # and whatever commits later is numbered above it and left to the next run.
    head = int(session.scalar(select(func.max(AuditEntry.seq))) or 0)
    months: list[str] | None
    if state is None:
        months = None
    elif head == state.seq:
        months = []
    else:
        months = changed_months(session, state.seq, head)
    if months is None or months:
        recompute(session, months)
        refresh_recent(session, now=now)
    _store_position(session, RollupState(seq=head, at=now))
    return RollupResult(months=months, seq=head)


def rebuild(session: DBSession, *, now: dt.datetime) -> RollupResult:
    """Recompute every month (after a bulk load, or to repair): the job's own work, for all of it."""
    return roll_up(session, now=now, full=True)
