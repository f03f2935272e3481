"""Database engine settings that make SQLite safe for several threads writing at once.

SQLite is the embedded default. In WAL mode readers never block the writer, but a transaction that
starts reading and later writes can fail at once with "database is locked" when another connection
wrote in between; starting every transaction with ``BEGIN IMMEDIATE`` takes the write lock up front, so
such a transaction waits (``busy_timeout``) instead of failing. PostgreSQL needs none of this.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Engine, event, insert
from sqlalchemy.orm import Session, scoped_session


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event below issue BEGIN itself, instead of pysqlite's deferred BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def configure_engine(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)


def init_app(app: Flask, db: SQLAlchemy) -> None:
    """Bind ``db`` to ``app`` and tune its engine."""
    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine)


DBSession = Session | scoped_session[Any]
"""What services accept: a plain session (tests, scripts) or Flask-SQLAlchemy's scoped ``db.session``."""


def _table_rank(table: Any) -> int:
    return list(table.metadata.sorted_tables).index(table)


class BulkInserts:
    """Rows to insert at the end of a unit of work, one executemany per table, in first-use order.

    The ORM tracks every object it inserts, which costs far more than the insert itself; a batch of
    documents writes a few rows each to the same tables, so the inbox collects them here and writes
    each table in one statement. Rows added here are not visible to queries until :meth:`flush`.
    """

    def __init__(self) -> None:
        self._rows: dict[Any, list[dict[str, Any]]] = {}

    def add(self, model: Any, **values: Any) -> None:
        self._rows.setdefault(model, []).append(values)

    def flush(self, session: DBSession) -> None:
        connection = session.connection()  # Core, past the ORM: these rows need no object tracking.
        # Parents before children (cases before the rows that refer to them), whatever the order of use.
        for model, rows in sorted(self._rows.items(), key=lambda item: _table_rank(item[0].__table__)):
            connection.execute(insert(model.__table__), rows)
        self._rows.clear()
