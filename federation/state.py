"""Small values a service keeps across restarts in its own database (``service_state``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import select

CRL_NUMBER = "crl_number"


def read_state(db: SQLAlchemy, model: type[Any], name: str) -> str | None:
    """The value stored under ``name``, read on a connection of its own (outside any unit of work)."""
    with db.engine.connect() as connection:
        value: str | None = connection.execute(select(model.value).where(model.name == name)).scalar()
        return value


def write_state(db: SQLAlchemy, model: type[Any], name: str, value: str) -> None:
    """Store ``value`` under ``name`` on a connection of its own, committed at once."""
    table = model.__table__
    now = dt.datetime.now(dt.UTC)
    with db.engine.begin() as connection:
        updated = connection.execute(table.update().where(table.c.name == name).values(value=value, updated_at=now))
        if not updated.rowcount:
            connection.execute(table.insert().values(name=name, value=value, updated_at=now))


class DatabaseCRLHighWater:
    """The highest CRL number a service accepted, kept in its database (see federation.trust)."""

    def __init__(self, db: SQLAlchemy, app: Flask, model: type[Any]) -> None:
        self.db = db
        self.app = app
        self.model = model

    def load(self) -> int:
        with self.app.app_context():
            value = read_state(self.db, self.model, CRL_NUMBER)
        return int(value) if value else 0

    def store(self, number: int) -> None:
        with self.app.app_context():
            write_state(self.db, self.model, CRL_NUMBER, str(number))
