"""Shared fixtures: real networks of processes on loopback, on SQLite and on PostgreSQL.

Every network test runs on both storage backends (``backend`` is parametrized). PostgreSQL databases are
created per network and dropped afterwards; CI has a server on 127.0.0.1:5432, so those tests never skip.
Outbound connections to anything but loopback fail the test.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, text

from demo.network import Layout, Network, lay_out, register_members

POSTGRES_ADMIN = os.environ.get("HOTLINE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
FAST_DELIVERY = {
    "DELIVERY_POLL_SECONDS": 0.2,
    "DELIVERY_BACKOFF_BASE_SECONDS": 0.2,
    "DELIVERY_BACKOFF_CAP_SECONDS": 1.0,
    "LOG_LEVEL": "INFO",
}


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connection this test process makes to a non-loopback address."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"test tried to reach {address}: only loopback is allowed")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


class PostgresDatabases:
    """Creates databases on the test server and drops them all at the end."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def create(self, label: str) -> str:
        name = f"hotline_test_{label.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        base = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        return f"{base}/{name}"

    def drop_all(self) -> None:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as connection:
            for name in self.names:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.names.clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_network(root: Path, backend: str, postgres: PostgresDatabases | None, **settings: Any) -> Network:
    members = ("exchange", "hotline-nl", "hotline-de", "hotline-fr", "secretariat")
    databases = {member: postgres.create(member) for member in members} if backend == "postgresql" and postgres else {}
    layout = lay_out(root, databases=databases, settings={**FAST_DELIVERY, **settings})
    register_members(layout)
    return Network(layout)


@pytest.fixture
def network_factory(tmp_path: Path, backend: str) -> Iterator[Any]:
    """Build (not start) networks for one test; stop their processes and drop their databases afterwards."""
    postgres = PostgresDatabases()
    networks: list[Network] = []

    def factory(**settings: Any) -> Network:
        network = make_network(tmp_path / f"net{len(networks)}", backend, postgres, **settings)
        networks.append(network)
        return network

    yield factory
    for network in networks:
        network.stop()
    postgres.drop_all()


@pytest.fixture
def network(network_factory: Any) -> Network:
    """A started network: the exchange, three members and the secretariat fallback."""
    started: Network = network_factory()
    started.start()
    return started


def count_rows(database_url: str, *tables: str) -> dict[str, int]:
    """Row counts read straight from a service's database (SQLite file or PostgreSQL)."""
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            return {
                table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()) for table in tables
            }
    finally:
        engine.dispose()


def query(database_url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), params).all())
    finally:
        engine.dispose()


__all__ = ["Layout", "count_rows", "query"]
