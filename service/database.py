"""Database engine settings that make SQLite safe for several threads writing at once, and forgetful.

SQLite is the embedded default. In WAL mode readers never block the writer, but a transaction that
starts reading and later writes can fail at once with "database is locked" when another connection
wrote in between; starting every transaction with ``BEGIN IMMEDIATE`` takes the write lock up front, so
such a transaction waits (``busy_timeout``) instead of failing. PostgreSQL needs none of this.

What a service erases must be gone from the files too (a delivered report's token holds its URL):
``secure_delete`` zeroes freed space in pages, ``journal_size_limit`` keeps the WAL file from holding
old pages after a checkpoint, and :func:`checkpoint` (run by the worker after tokens were erased)
copies the WAL into the database and truncates it, so no earlier version of a page survives.
docs/operations.md says what PostgreSQL deployments do for the same promise.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Dialect,
    Engine,
    MetaData,
    and_,
    bindparam,
    event,
    insert,
    select,
    tuple_,
)
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names every migration can rely on (Alembic cannot alter an unnamed constraint on SQLite)."""


def new_database() -> SQLAlchemy:
    """A service's database handle, with the naming convention for constraints."""
    return SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the backend stores.

    SQLite has no time zones and hands back naive values; PostgreSQL stores ``timestamptz``. Both come
    back aware, so comparisons with ``now`` never mix naive and aware times.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _sqlite_connect(dbapi_connection: Any, _record: Any, *, busy_timeout_ms: int = 0) -> None:
    # Let SQLAlchemy's "begin" event below issue BEGIN itself, instead of pysqlite's deferred BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms or BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA journal_size_limit=1048576")
    cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
    cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.close()


SQLITE_MMAP_BYTES = 1 << 30
"""Read the first GiB of the database through memory mapping: index pages come from the kernel's page
cache, shared by every connection, without a read call each (issue 11: at a million cases, ingest cost
1.47x its empty-store cost with SQLite's default 2 MB page cache per connection, 1.30x with this)."""
SQLITE_CACHE_KIB = 256
"""Each connection's own page cache (SQLite's default is 2,000 KiB). With the file memory-mapped, pages
read come from the kernel's page cache; this cache holds the pages a connection wrote, and every pooled
connection filled its 2 MB over minutes: the 10-minute soak saw the exchange's processes' private
memory grow by 18-25 MB and level off (issue 11). Ingest cost was the same with 256 KiB (bench/ingest.py
at 100,000 cases, two runs each: 697-772 against 718-756 µs per report)."""
SQLITE_AUTOCHECKPOINT_PAGES = 10_000
"""How long the write-ahead log may grow (in 4 KiB pages: 40 MB) before a committing connection copies it
into the database itself. SQLite's default, 1,000, made every fifteenth single-report transaction at the
exchange pay for a checkpoint in its request (3-5 ms, two fsyncs: 60 % of the time its commits took,
issue 11). The worker copies the log every ``CHECKPOINT_SECONDS`` instead (:func:`checkpoint`, passive,
in its own process), so this bound is reached only where no worker runs (a command, a test)."""
BUSY_TIMEOUT_MS = 30_000
"""How long a statement waits for SQLite's write lock before it fails, unless the engine is configured
with another wait (the services' ``SQLITE_BUSY_TIMEOUT_SECONDS``)."""
_POLL_FIRST, _POLL_MAX = 0.0002, 0.002


_READING: contextvars.ContextVar[bool] = contextvars.ContextVar("reading", default=False)


@contextmanager
def reading(session: DBSession) -> Iterator[None]:
    """Run queries that only read without taking SQLite's write lock; end their transaction after.

    Every transaction on SQLite begins with ``BEGIN IMMEDIATE`` (see the module's essay), which makes
    a query that only reads wait for, and hold up, every writer. Inside this block a new transaction
    begins deferred instead (a WAL reader neither waits nor blocks), and it is rolled back at the end so
    the session's next transaction takes the write lock from its start again. The block must not write.
    Inside a transaction already begun, the block changes nothing (and ends nothing).
    """
    plain = session() if isinstance(session, scoped_session) else session
    if plain.in_transaction():
        yield
        return
    token = _READING.set(True)
    try:
        yield
    finally:
        _READING.reset(token)
        session.rollback()


def _sqlite_begin(connection: Any, *, busy_timeout_ms: int = 0) -> None:
    """Take the write lock (``BEGIN IMMEDIATE``), waking within 2 ms of its release.

    SQLite's own busy handler sleeps in growing steps (1, 2, 5, … 100 ms) whatever the holder does, so
    under contention a writer slept on long after the lock was free: at the exchange, where several
    processes and threads commit small transactions all the time, half of the network process's busy
    time went in that sleep. So the lock is asked for without waiting (busy timeout 0 for the BEGIN
    alone) and asked again every 0.2–2 ms; after ``BUSY_TIMEOUT_MS`` a last ordinary BEGIN waits the
    usual way and fails with SQLAlchemy's error if the lock never comes.
    """
    busy_timeout_ms = busy_timeout_ms or BUSY_TIMEOUT_MS
    raw = connection.connection.driver_connection
    if _READING.get():
        raw.execute("BEGIN")
        return
    raw.execute("PRAGMA busy_timeout=0")
    try:
        deadline, pause = time.monotonic() + busy_timeout_ms / 1000, _POLL_FIRST
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
            if time.monotonic() >= deadline:
                break
            time.sleep(pause)
            pause = min(pause * 2, _POLL_MAX)
    finally:
        raw.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    connection.exec_driver_sql("BEGIN IMMEDIATE")


_WRITERS: dict[str, threading.Lock] = {}
"""Each SQLite file's lock, by the database name an engine gives (resolved to the file once per name)."""
_FILES: dict[str, threading.Lock] = {}
_WRITERS_LOCK = threading.Lock()


def writing(engine: Engine) -> AbstractContextManager[object]:
    """Hold this process's turn to write to ``engine``'s SQLite file, for a whole transaction.

    SQLite lets one writer in at a time. Threads of another process wait for it by asking again and again
    (:func:`_sqlite_begin`); threads of one process can simply queue on a lock of their own and be woken
    the moment the writer before them is done. With four clients sending single-report transactions,
    the exchange's network process used 3,820-3,867 µs of CPU per transaction polling, 3,673-3,720 µs
    queued so (263-270 against 272-276 transactions/s, issue 11). Wrap the transaction, from its first
    statement to its commit or rollback, and nothing that waits on another thread of the process. On
    PostgreSQL it holds nothing: writers there do not exclude one another.
    """
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return nullcontext()
    found = _WRITERS.get(database)
    if found is None:  # Once per name: resolving the path costs a system call per directory.
        with _WRITERS_LOCK:
            found = _FILES.setdefault(os.path.realpath(database), threading.Lock())
            _WRITERS[database] = found
    return found


def configure_engine(engine: Engine, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
    """Tune a new engine: on SQLite, WAL, the pragmas above, and writers that take the lock at BEGIN,
    waiting up to ``busy_timeout_ms`` for it."""
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", functools.partial(_sqlite_connect, busy_timeout_ms=busy_timeout_ms))
        event.listen(engine, "begin", functools.partial(_sqlite_begin, busy_timeout_ms=busy_timeout_ms))


def checkpoint(engine: Engine, *, truncate: bool = True) -> bool:
    """Copy SQLite's write-ahead log into the database; False where there is nothing to do.

    With ``truncate`` (forgetting erased tokens) the log is then emptied, which waits for writers and
    readers to let go of it; without (the worker's regular copy, :data:`SQLITE_AUTOCHECKPOINT_PAGES`) it
    copies what no reader still needs and blocks nobody. Returns whether the whole log was copied (a reader
    holding an old snapshot can prevent that; the next run catches up).
    """
    if engine.dialect.name != "sqlite":
        return False
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        mode = "TRUNCATE" if truncate else "PASSIVE"
        busy, in_log, copied = raw.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    return not busy and copied == in_log


def db_of(app: Flask) -> SQLAlchemy:
    """The database handle a service's app was built with (for code both services share)."""
    found: SQLAlchemy = app.extensions["service_db"]
    return found


def init_app(app: Flask, db: SQLAlchemy) -> None:
    """Bind ``db`` to ``app`` and tune its engine."""
    db.init_app(app)
    app.extensions["service_db"] = db
    with app.app_context():
        configure_engine(db.engine, busy_timeout_ms=round(app.config["SQLITE_BUSY_TIMEOUT_SECONDS"] * 1000))


def pairs_in(first: Any, second: Any, name: str) -> ColumnElement[bool]:
    """``(first, second) IN :name``, in a form SQLite answers from an index on (first, second).

    Bind it with :func:`pair_params` (``name`` tells several apart), so the statement can be built once.
    SQLite scans the whole table for a row-value IN list (``(a, b) IN (VALUES …)``), which made every
    batch lookup cost more as the store grew (issue 11: 9x the empty-store cost at a million cases).
    With an IN list on each column as well, it searches the index and keeps the exact pairs; PostgreSQL
    plans either form on the index.
    """
    return and_(
        first.in_(bindparam(f"{name}_first", expanding=True)),
        second.in_(bindparam(f"{name}_second", expanding=True)),
        tuple_(first, second).in_(bindparam(name, expanding=True)),
    )


def spelled_out(values: Any) -> Any:
    """A value (or, given a list or tuple, the values of an IN list) written into the statement's text
    when it runs, not sent as a parameter.

    A database uses a partial index only when it can see that the query's condition implies the index's
    ``WHERE``; it cannot see that through a parameter (SQLite plans a prepared statement once, PostgreSQL
    may use a generic plan). SQLite sees ``state = 'dead'`` in ``state = 'dead'`` but not in
    ``state IN ('dead')``: give one value as a value. The values are the code's own constants, never a
    client's input.
    """
    if isinstance(values, list | tuple):
        return bindparam("spelled_out", list(values), expanding=True, literal_execute=True, unique=True)
    return bindparam("spelled_out", values, literal_execute=True, unique=True)


def pair_params(name: str, pairs: Iterable[tuple[Any, Any]]) -> dict[str, list[Any]]:
    """The parameters of :func:`pairs_in` ``name`` for ``pairs``."""
    wanted = list(dict.fromkeys(pairs))
    return {
        f"{name}_first": list(dict.fromkeys(a for a, _ in wanted)),
        f"{name}_second": list(dict.fromkeys(b for _, b in wanted)),
        name: wanted,
    }


class Query:
    """A statement built once, compiled once per dialect, and run on the DB-API cursor of the transaction.

    SQLAlchemy's execution of a statement it has cached still costs about 50 µs in Python (the execution
    context, parameter processing, the result's metadata), against about 15 µs for SQLite to answer a
    lookup by key: a one-report transaction makes nine such reads (issue 11). Here the statement's SQL,
    its parameters' order and the value processors of its parameters and columns (JSON, booleans and
    UTC timestamps on SQLite) are worked out once per dialect, with SQLAlchemy's public type API, and
    each call goes straight to the driver, inside the transaction the connection has begun. Driver errors
    come out as SQLAlchemy's exceptions, as from ``Connection.execute``. Only for statements without
    expanding (``IN`` list) parameters: their SQL text changes with every call.
    """

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._compiled: dict[str, _CompiledQuery] = {}

    def _for(self, dialect: Dialect) -> _CompiledQuery:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = _CompiledQuery(self.statement, dialect)
        return found

    def rows(self, connection: Connection, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Every row, as plain tuples, within ``connection``'s transaction."""
        return self._for(connection.dialect).run(connection.connection, params or {})

    def first(self, connection: Connection, params: dict[str, Any] | None = None) -> tuple[Any, ...] | None:
        rows = self.rows(connection, params)
        return rows[0] if rows else None

    def scalar(self, connection: Connection, params: dict[str, Any] | None = None) -> Any:
        row = self.first(connection, params)
        return None if row is None else row[0]

    def run(self, connection: Connection, params: dict[str, Any] | None = None) -> int:
        """Run an UPDATE or DELETE within ``connection``'s transaction; the number of rows it matched."""
        return self._for(connection.dialect).run_for_count(connection.connection, params or {})

    def read_alone(self, engine: Engine, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Every row, read on a pooled connection outside any transaction of the caller's (a check at the
        edge of a request, before its own transaction begins; SQLite answers it as a WAL reader)."""
        compiled = self._for(engine.dialect)
        raw = engine.raw_connection()
        try:
            return compiled.run(raw, params or {})
        finally:
            raw.close()  # Back to the pool, which ends the driver's transaction if it began one.


class _CompiledQuery:
    """A :class:`Query` for one dialect: SQL text, parameter order, value processors."""

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if any(bind.expanding for bind in compiled.bind_names):
            raise ValueError("a Query cannot hold an expanding (IN list) parameter")
        self.call = _DriverCall(compiled, dialect)
        self.defaults = compiled.construct_params(_check=False)
        self.required = frozenset(name for bind, name in compiled.bind_names.items() if bind.required)
        columns = statement.selected_columns if statement.is_select else ()
        self.results = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
        self.plain_results = not any(self.results)

    def _values(self, params: dict[str, Any]) -> dict[str, Any]:
        if not self.required <= params.keys():  # As SQLAlchemy: a missing value is a mistake, not NULL.
            missing = ", ".join(sorted(self.required - params.keys()))
            raise InvalidRequestError(f"A value is required for bind parameter(s) {missing}")
        return {**self.defaults, **params}

    def run_for_count(self, dbapi_connection: Any, params: dict[str, Any]) -> int:
        return self.call.execute(dbapi_connection, self._values(params), fetch=False)

    def run(self, dbapi_connection: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        fetched = self.call.execute(dbapi_connection, self._values(params), fetch=True)
        if self.plain_results:
            return list(fetched)  # sqlite3 and psycopg both fetch plain tuples.
        processors = self.results
        return [
            tuple(value if process is None else process(value) for value, process in zip(row, processors, strict=True))
            for row in fetched
        ]


class _DriverCall:
    """A compiled statement's SQL, its parameters' order and their value processors, run on a DB-API
    cursor; driver errors come out as SQLAlchemy's exceptions (an ``IntegrityError`` stays one)."""

    def __init__(self, compiled: Any, dialect: Dialect) -> None:
        self.sql: str = compiled.string
        self.error = dialect.loaded_dbapi.Error
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ()) if compiled.positional else ()
        self.processors = {
            name: processor
            for bind, name in compiled.bind_names.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }

    def arguments(self, values: dict[str, Any]) -> Any:
        """The driver's parameters for ``values`` (which this changes: processed in place)."""
        for name, processor in self.processors.items():
            values[name] = processor(values[name])
        return tuple(values[name] for name in self.names) if self.names else values

    def execute(self, dbapi_connection: Any, values: dict[str, Any], *, fetch: bool) -> Any:
        arguments = self.arguments(values)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(self.sql, arguments)
            return cursor.fetchall() if fetch else int(cursor.rowcount)
        except self.error as exc:
            raise DBAPIError.instance(self.sql, arguments, exc, self.error) from exc
        finally:
            cursor.close()

    def execute_many(self, dbapi_connection: Any, rows: list[Any]) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.executemany(self.sql, rows)
        except self.error as exc:
            raise DBAPIError.instance(self.sql, rows, exc, self.error) from exc
        finally:
            cursor.close()


class _CompiledInsert:
    """``INSERT INTO table (keys…)`` for one dialect, with the columns' Python-side defaults filled in
    as SQLAlchemy would (``default=0``, ``default=list``; server defaults are the database's)."""

    def __init__(self, table: Any, keys: tuple[str, ...], dialect: Dialect) -> None:
        # Inline: no RETURNING of generated keys (PostgreSQL would add it for one row); nobody reads them.
        compiled = _insert(table).inline().compile(dialect=dialect, column_keys=list(keys))
        self.call = _DriverCall(compiled, dialect)
        self.prefetch = [(column.key, column.default) for column in compiled.insert_prefetch]
        if any(default is None or not (default.is_callable or default.is_scalar) for _, default in self.prefetch):
            raise ValueError(f"{table.name} has a column default that must run in the database")

    def run(self, dbapi_connection: Any, rows: list[dict[str, Any]]) -> None:
        arguments = []
        for row in rows:
            values = dict(row)
            for key, default in self.prefetch:
                values[key] = default.arg(None) if default.is_callable else default.arg
            arguments.append(self.call.arguments(values))
        self.call.execute_many(dbapi_connection, arguments)


_COMPILED_INSERTS: dict[tuple[Any, tuple[str, ...], str], _CompiledInsert] = {}


def insert_rows(connection: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table`` in one ``executemany`` on the driver's
    cursor, within ``connection``'s transaction: what ``connection.execute(insert(table), rows)`` does,
    without SQLAlchemy's 50-odd µs of Python per statement (issue 11: a one-report transaction inserts
    into seven tables)."""
    keys = tuple(rows[0])
    if any(len(row) != len(keys) or row.keys() != rows[0].keys() for row in rows):
        connection.execute(_insert(table), rows)  # Rows of different shapes: SQLAlchemy's rules, as before.
        return
    found = _COMPILED_INSERTS.get((table, keys, connection.dialect.name))
    if found is None:
        found = _COMPILED_INSERTS[(table, keys, connection.dialect.name)] = _CompiledInsert(
            table, keys, connection.dialect
        )
    found.run(connection.connection, rows)


class KeyLookup:
    """``SELECT columns WHERE key IN keys`` (or ``(key, second) IN`` pairs), built once, run per batch.

    With one key it runs an equality, as a :class:`Query`: an IN list is expanded into the SQL text on
    every call, 72–118 µs against 38 µs for the equality through SQLAlchemy, and about 15 µs on the
    driver's cursor (issue 11; a one-report transaction makes four such lookups).
    """

    def __init__(self, columns: Sequence[Any], key: Any, second: Any = None) -> None:
        self.pair = second is not None
        if second is not None:
            self.one = Query(select(*columns).where(key == bindparam("k1"), second == bindparam("k2")))
            self.many = select(*columns).where(pairs_in(key, second, "keys"))
        else:
            self.one = Query(select(*columns).where(key == bindparam("k1")))
            self.many = select(*columns).where(key.in_(bindparam("keys", expanding=True)))

    def __call__(self, connection: Connection, keys: Iterable[Any]) -> list[tuple[Any, ...]]:
        """The rows of ``columns`` for ``keys`` (values, or pairs for a pair lookup; at least one)."""
        wanted = list(dict.fromkeys(keys))
        if len(wanted) == 1:
            only = wanted[0]
            return self.one.rows(connection, {"k1": only[0], "k2": only[1]} if self.pair else {"k1": only})
        params = pair_params("keys", wanted) if self.pair else {"keys": wanted}
        return [tuple(row) for row in connection.execute(self.many, params)]


DBSession = Session | scoped_session[Any]
"""What services accept: a plain session (tests, scripts) or Flask-SQLAlchemy's scoped ``db.session``."""


_RANKS: dict[int, dict[Any, int]] = {}


def _table_rank(table: Any) -> int:
    """The table's place in its metadata's dependency order (sorted once per metadata: the sort walks
    every table and constraint, which cost more than a one-report transaction's inserts)."""
    ranks = _RANKS.get(id(table.metadata))
    if ranks is None or table not in ranks:
        ranks = _RANKS[id(table.metadata)] = {t: n for n, t in enumerate(table.metadata.sorted_tables)}
    return ranks[table]


@functools.cache
def _insert(table: Any) -> Any:
    """One INSERT statement per table, built once (its cache key is then computed once too)."""
    return insert(table)


class BulkInserts:
    """Rows to insert at the end of a unit of work, one executemany per table, in first-use order.

    The ORM tracks every object it inserts, which costs far more than the insert itself; a batch of
    documents writes a few rows each to the same tables, so the inbox collects them here and writes
    each table in one statement. Rows added here are not visible to queries until :meth:`flush`.
    """

    def __init__(self) -> None:
        self._rows: dict[Any, list[dict[str, Any]]] = {}

    def add(self, model: Any, **values: Any) -> dict[str, Any]:
        """Queue a row; the dict returned is the row itself, which may still change until :meth:`flush`."""
        self._rows.setdefault(model, []).append(values)
        return values

    def flush(self, session: DBSession) -> None:
        connection = session.connection()  # Core, past the ORM: these rows need no object tracking.
        # Parents before children (cases before the rows that refer to them), whatever the order of use.
        for model, rows in sorted(self._rows.items(), key=lambda item: _table_rank(item[0].__table__)):
            insert_rows(connection, model.__table__, rows)
        self._rows.clear()
