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
from sqlalchemy import Engine, event
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
