"""Each service's migrations build exactly the schema its models describe, on SQLite and on PostgreSQL.

An empty database is upgraded from the first migration to the head; then the schema is compared with the
models (Alembic's autogenerate comparison). A model changed without a migration fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demo.network import lay_out, service_app
from service import migrations
from tests.conftest import PostgresDatabases, received_case_row


@pytest.fixture
def postgres() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases()
    yield databases
    databases.drop_all()


@pytest.mark.parametrize("kind", ["exchange", "node"])
def test_migrations_from_empty_build_the_models_schema(
    kind: str, backend: str, tmp_path: Path, postgres: PostgresDatabases
) -> None:
    layout = lay_out(tmp_path / "net", members=()) if kind == "exchange" else lay_out(tmp_path / "net")
    spec = layout.exchange if kind == "exchange" else next(iter(layout.members.values()))
    if backend == "postgresql":
        spec.use_database(postgres.create(f"migrations_{kind}"))
    app: Any = service_app(spec)
    db = app.extensions["service_db"]
    with app.app_context():
        assert migrations.current_revision(app, db) is None
        migrations.upgrade(app)
        assert migrations.current_revision(app, db) == migrations.head_revision(app)
        assert migrations.drift(app, db) == []
        migrations.require_current(app, db, command="hotline-test")  # Does not raise.
        db.engine.dispose()


def test_every_received_case_gets_a_removal_watch_when_the_node_migrates(
    backend: str, tmp_path: Path, postgres: PostgresDatabases
) -> None:
    """Before b3f0d6a91c27 a case had a watch only once it was first checked, and the removal-check job
    looked through every received case for the due ones. The migration gives every case a watch (due when
    it was received; none for a case never checked), and takes never-checked cases off the schedule."""
    import datetime as dt

    from sqlalchemy import insert, select

    from node.received.models import InboundCase
    from node.removal.models import Watch

    layout = lay_out(tmp_path / "net")
    spec = next(iter(layout.members.values()))
    if backend == "postgresql":
        spec.use_database(postgres.create("migrations_watches"))
    app: Any = service_app(spec)
    db = app.extensions["service_db"]
    received = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
    later = dt.datetime(2026, 12, 2, 18, 0, tzinfo=dt.UTC)
    with app.app_context():
        migrations.upgrade(app, "9e4b7c1d2f60")
        statuses = {
            "new": "received",
            "checked": "ntd_sent",
            "off": "removed",
            "fine": "not_illegal_here",
            "gone": "moved",
        }
        with db.engine.begin() as connection:
            connection.execute(
                insert(InboundCase.__table__),
                [
                    received_case_row(case_id, n, status=status, at=received)
                    for n, (case_id, status) in enumerate(statuses.items())
                ],
            )
            connection.execute(  # Watches made by the old job's checks (and an analyst's "do not fetch").
                insert(Watch.__table__),
                [
                    {"case_kind": "received", "case_id": "checked", "do_not_fetch": False, "next_check_at": later},
                    {"case_kind": "received", "case_id": "off", "do_not_fetch": True, "next_check_at": later},
                    {"case_kind": "received", "case_id": "fine", "do_not_fetch": False, "next_check_at": later},
                ],
            )
        migrations.upgrade(app)
        with db.engine.connect() as connection:
            watches = {row.case_id: row for row in connection.execute(select(Watch.__table__))}
        assert {case_id: (row.do_not_fetch, row.next_check_at) for case_id, row in watches.items()} == {
            "new": (False, received),  # Due since it was received.
            "checked": (False, later),
            "off": (True, later),
            "fine": (False, None),  # Not illegal here: off the schedule.
            "gone": (False, None),  # Moved: off the schedule.
        }
        assert migrations.drift(app, db) == []
        db.engine.dispose()
