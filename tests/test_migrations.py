"""Each service's migrations build exactly the schema its models describe, on SQLite and on PostgreSQL.

An empty database is upgraded from the first migration to the head; then the schema is compared with the
models (Alembic's autogenerate comparison). A model changed without a migration fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demo.network import lay_out, read_toml, service_app, write_toml
from service import migrations
from tests.conftest import PostgresDatabases


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
        spec.database = postgres.create(f"migrations_{kind}")
        write_toml(spec.config, {**read_toml(spec.config), "SQLALCHEMY_DATABASE_URI": spec.database})
    app: Any = service_app(spec)
    db = app.extensions["service_db"]
    with app.app_context():
        assert migrations.current_revision(app, db) is None
        migrations.upgrade(app)
        assert migrations.current_revision(app, db) == migrations.head_revision(app)
        assert migrations.drift(app, db) == []
        migrations.require_current(app, db, command="hotline-test")  # Does not raise.
        db.engine.dispose()
