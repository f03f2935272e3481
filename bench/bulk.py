"""Filling a migrated exchange database by bulk SQL, as a bulk load would: the secondary indexes of the
tables loaded are dropped first and built again at the end (``executemany`` on SQLite, ``COPY`` on
PostgreSQL). Shared by ``bench/dashboard.py`` (a store built once) and ``bench/ingest.py`` (a store grown
step by step)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psycopg

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
"""The test server's maintenance database: bench stores are created and dropped through it."""
CASE_COLUMNS = (
    "id, url_fingerprint, origin, destination, hosting_country, legal_status, priority, state, confirmed_at,"
    " created_at, received_at, rejected_at, rejected_reason, status, status_at, ntd_sent_at, police_notified_at,"
    " removed_at, moved_at"
)
SQL = {
    "cases": f"INSERT INTO cases ({CASE_COLUMNS}) VALUES ({', '.join(['?'] * 19)})",  # noqa: S608 - constants.
    "locations": "INSERT INTO locations (url_fingerprint, case_id) VALUES (?, ?)",
    "hashes": "INSERT INTO case_hashes (alg, value, case_id) VALUES (?, ?, ?)",
    "reports": "INSERT INTO case_reports (report_id, member, case_id, duplicate, state, received_at, hosting_country,"
    " priority, hashes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "outbox": "INSERT INTO outbox (destination, author, doc_id, typ, priority, state, attempts, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
}
COPY = {
    "cases": f"COPY cases ({CASE_COLUMNS}) FROM STDIN",
    "locations": "COPY locations (url_fingerprint, case_id) FROM STDIN",
    "hashes": "COPY case_hashes (alg, value, case_id) FROM STDIN",
    "reports": "COPY case_reports (report_id, member, case_id, duplicate, state, received_at, hosting_country,"
    " priority, hashes) FROM STDIN",
    "outbox": "COPY outbox (destination, author, doc_id, typ, priority, state, attempts, created_at) FROM STDIN",
}


def sqlite_value(value: Any) -> Any:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, dt.datetime) else value


MEMBERS_SQL = "INSERT INTO members (id, name, countries, status, is_fallback, created_at) VALUES"
Chunk = dict[str, list[tuple[Any, ...]]]


def load_sqlite(
    path: Path, members: list[tuple[Any, ...]], chunks: Iterable[Chunk], tables: tuple[str, ...], *, journal: bool
) -> None:
    """Insert ``members`` (those not there yet) and every chunk's rows; ``journal=False`` for a new file."""
    connection = sqlite3.connect(path)
    if not journal:
        connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA cache_size=-1000000")
    names = ", ".join(repr(table) for table in tables)
    indexes = connection.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({names})"  # noqa: S608 - constants.
    ).fetchall()
    for name, _ in indexes:
        connection.execute(f'DROP INDEX "{name}"')
    connection.executemany(
        f"{MEMBERS_SQL} (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        [tuple(sqlite_value(value) for value in row) for row in members],
    )
    for chunk in chunks:
        for table, values in chunk.items():
            connection.executemany(SQL[table], [tuple(sqlite_value(value) for value in row) for row in values])
        connection.commit()
    for _, sql in indexes:
        connection.execute(sql)
    connection.execute("ANALYZE")
    connection.commit()
    if journal:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


def load_postgres(url: str, members: list[tuple[Any, ...]], chunks: Iterable[Chunk], tables: tuple[str, ...]) -> None:
    """The same on PostgreSQL (``url`` in psycopg's form)."""
    with psycopg.connect(url, autocommit=True) as connection:
        indexes = connection.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND indexname LIKE 'ix_%%'"
            " AND tablename = ANY(%s)",
            (list(tables),),
        ).fetchall()
        for name, _ in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        with connection.cursor() as cursor:
            cursor.executemany(f"{MEMBERS_SQL} (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING", members)
            for chunk in chunks:
                for table, values in chunk.items():
                    with cursor.copy(COPY[table]) as copy:
                        for row in values:
                            copy.write_row(row)
        connection.execute("SET maintenance_work_mem = '1GB'")
        for _, sql in indexes:
            connection.execute(sql)
        connection.execute("VACUUM ANALYZE")
