"""Shared fixtures: real networks of processes on loopback, on SQLite and on PostgreSQL.

Every network test runs on both storage backends (``backend`` is parametrized). PostgreSQL databases are
created per network and dropped afterwards; CI has a server on 127.0.0.1:5432, so those tests never skip.
Outbound connections to anything but loopback fail the test.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session

from certs.devnet import DEV_MEMBERS
from demo.network import Layout, Network, lay_out, prepare_database, register_members
from demo.zygote import Zygote

POSTGRES_ADMIN = os.environ.get("HOTLINE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
FAST_DELIVERY = {
    "DELIVERY_POLL_SECONDS": 0.2,
    "DELIVERY_BACKOFF_BASE_SECONDS": 0.2,
    "DELIVERY_BACKOFF_CAP_SECONDS": 1.0,
    "STATUS_ROLLUP_SECONDS": 0.5,
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
    """Creates databases on the test server (from a migrated template, when given) and drops them at the end."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def create(self, label: str, *, template: str | None = None) -> str:
        name = f"hotline_test_{label.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        self.names.append(name)
        return url_of(name)

    def drop_all(self) -> None:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as connection:
            for name in self.names:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.names.clear()


def url_of(name: str) -> str:
    base = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return f"{base}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


TEMPLATES: dict[str, dict[str, str]] = {}
"""Migrated empty databases per backend and service kind, made once per session (``templates``)."""


@pytest.fixture(scope="session", autouse=True)
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, str]]]:
    """Run each service's migrations once per session; every network copies the result.

    Migrating five databases per network would cost more than everything else a network test does. A
    test (test_migrations) still upgrades empty databases from the first migration, on both backends.
    """
    layout = lay_out(tmp_path_factory.mktemp("templates"), members=(DEV_MEMBERS[0],))
    sqlite = {"exchange": layout.exchange.database, "node": layout.members[DEV_MEMBERS[0].member_id].database}
    prepare_database(layout.exchange)
    prepare_database(layout.members[DEV_MEMBERS[0].member_id])
    TEMPLATES["sqlite"] = {kind: url.removeprefix("sqlite:///") for kind, url in sqlite.items()}
    names = {kind: f"hotline_template_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("exchange", "node")}
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as connection:
        for name in names.values():
            connection.execute(f'CREATE DATABASE "{name}"')
    for kind, spec in (("exchange", layout.exchange), ("node", layout.members[DEV_MEMBERS[0].member_id])):
        spec.use_database(url_of(names[kind]))
        prepare_database(spec)
    TEMPLATES["postgresql"] = names
    yield TEMPLATES
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as connection:
        for name in names.values():
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_FORK_SERVER: list[Zygote] = []


def fork_server() -> Zygote:
    """One fork server for the whole session: every network's processes are forked from it."""
    if not _FORK_SERVER:
        _FORK_SERVER.append(Zygote())
    return _FORK_SERVER[0]


@pytest.fixture(scope="session", autouse=True)
def _close_fork_server() -> Iterator[None]:
    yield
    for zygote in _FORK_SERVER:
        zygote.close()


def make_network(
    root: Path,
    backend: str,
    postgres: PostgresDatabases | None,
    *,
    members: Any = None,
    unregistered: tuple[str, ...] = (),
    **settings: Any,
) -> Network:
    chosen = members or DEV_MEMBERS
    databases = {}
    if backend == "postgresql" and postgres:
        databases["exchange"] = postgres.create("exchange", template=TEMPLATES["postgresql"]["exchange"])
        for member in chosen:
            databases[member.member_id] = postgres.create(member.member_id, template=TEMPLATES["postgresql"]["node"])
    layout = lay_out(root, members=chosen, databases=databases, settings={**FAST_DELIVERY, **settings})
    register_members(layout, templates=TEMPLATES["sqlite"], migrated=backend == "postgresql", unregistered=unregistered)
    return Network(layout, launcher=fork_server())


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


def wait_for_directory(network: Network, member_id: str, timeout: float = 20.0) -> None:
    """Wait until the node's worker has stored the signed member directory (fetched at start, in the
    background): a console that needs it before then answers 503 directory_unavailable, "retry shortly"."""
    deadline = time.monotonic() + timeout
    database = network.layout.spec(member_id).database
    while not query(database, "SELECT 1 FROM service_state WHERE name = 'directory'"):
        if time.monotonic() > deadline:
            raise AssertionError(f"{member_id} stored no member directory within {timeout} s")
        time.sleep(0.05)


def execute(database_url: str, sql: str, **params: Any) -> int:
    """Change rows straight in a service's database (a test moving time on, say); returns the row count."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            return int(connection.execute(text(sql), params).rowcount)
    finally:
        engine.dispose()


__all__ = ["Layout", "count_rows", "execute", "query"]


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[Any]:
    """``store(kind)``: an engine on a fresh migrated database of one service kind (``exchange`` or
    ``node``) on the test's backend, for tests of queries on large tables built by bulk SQL."""
    postgres = PostgresDatabases()
    engines: list[Engine] = []

    def make(kind: str) -> Engine:
        if backend == "sqlite":
            path = tmp_path / f"{kind}-{len(engines)}.db"
            shutil.copyfile(TEMPLATES["sqlite"][kind], path)
            engines.append(create_engine(f"sqlite:///{path}"))
        else:
            engines.append(create_engine(postgres.create(kind, template=TEMPLATES["postgresql"][kind])))
        return engines[-1]

    yield make
    for engine in engines:
        engine.dispose()
    postgres.drop_all()


def query_plan(session: Session, run: Callable[[], object]) -> str:
    """The database's plan for the last statement ``run`` sends (after an ANALYZE), as text: SQLite's
    ``EXPLAIN QUERY PLAN``, PostgreSQL's ``EXPLAIN``. Tests read it to check that a query stays served by
    an index as tables grow, which no timing on a test machine can show."""
    engine = session.get_bind()
    session.commit()
    if engine.dialect.name == "postgresql":  # As autovacuum leaves a table: statistics and visibility map.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    else:
        session.execute(text("ANALYZE"))
        session.commit()
    seen: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        seen.append((args[2], args[3]))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = seen[-1]
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    return "\n".join(str(row[-1]) for row in session.connection().exec_driver_sql(explain + statement, parameters))


def received_case_row(case_id: str, n: int, *, status: str, at: Any, priority: str = "normal") -> dict[str, Any]:
    """An ``inbound_cases`` row for bulk inserts (``n`` makes its URL fingerprint unique)."""
    return {
        "id": case_id,
        "origin": "hotline-nl",
        "url": f"http://many.example/{case_id}",
        "url_fingerprint": f"{n:064x}",
        "hosting_country": "DE",
        "legal_status": "baseline",
        "priority": priority,
        "content_hashes": [],
        "details": {},
        "confirmed_at": at,
        "received_at": at,
        "status": status,
        "same_material": [],
    }
