"""Schema migrations per service (Alembic through Flask-Migrate), and the refusal to run on an old schema.

Each service keeps its migrations beside its code (``exchange/migrations``, ``node/migrations``). The
database is created and upgraded only by ``hotline-exchange db upgrade`` / ``hotline-node db upgrade``
(``create_all`` is for tests alone), and every serving command first checks that the database is at the
newest revision, refusing to start with a message that names the command when it is not.
"""

from __future__ import annotations

from pathlib import Path

import click
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, current_app
from flask_migrate import Migrate
from flask_migrate import upgrade as alembic_upgrade
from flask_sqlalchemy import SQLAlchemy

from service.cli import with_app
from service.config import ConfigError


def init_app(app: Flask, db: SQLAlchemy, directory: Path) -> None:
    # render_as_batch: SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
    Migrate(app, db, directory=str(directory), render_as_batch=True, compare_type=True)


def _directory(app: Flask) -> str:
    return str(app.extensions["migrate"].directory)


def head_revision(app: Flask) -> str | None:
    config = app.extensions["migrate"].migrate.get_config(_directory(app))
    return ScriptDirectory.from_config(config).get_current_head()


def current_revision(app: Flask, db: SQLAlchemy) -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(app: Flask, revision: str = "head") -> None:
    """Bring the app's database to the newest revision, or to ``revision`` (inside an app context)."""
    alembic_upgrade(directory=_directory(app), revision=revision)


def require_current(app: Flask, db: SQLAlchemy, *, command: str) -> None:
    """Refuse to serve on a database that is behind (or ahead of) the code.

    Raises:
        ConfigError: naming the command that fixes it.
    """
    with app.app_context():
        current, head = current_revision(app, db), head_revision(app)
    if current != head:
        where = "empty (never upgraded)" if current is None else f"at revision {current}"
        raise ConfigError(f"the database is {where}; this code needs revision {head}: run `{command} db upgrade`")


def drift(app: Flask, db: SQLAlchemy) -> list[tuple[object, ...]]:
    """Differences between the models and the database's schema (empty when migrations and models agree)."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "render_as_batch": True})
        return list(compare_metadata(context, db.metadata))


def db_group(command: str) -> click.Group:
    """``db upgrade``, ``db current`` and ``db check`` for one service."""
    group = click.Group("db", help="The database schema: create or upgrade it, see where it stands.")

    @group.command("upgrade")
    @with_app("worker")
    def upgrade_command() -> None:
        """Create the database's tables, or bring them to the newest revision."""
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        upgrade(app)
        click.echo(f"database at revision {head_revision(app)}: {app.config['SQLALCHEMY_DATABASE_URI']}")

    @group.command("current")
    @with_app("worker")
    def current_command() -> None:
        """Print the database's revision and the newest one the code knows."""
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        db = app.extensions["service_db"]
        click.echo(f"database: {current_revision(app, db) or '(empty)'}; code: {head_revision(app)}")

    @group.command("check")
    @with_app("worker")
    def check_command() -> None:
        """Exit non-zero if the database is behind, or its schema differs from the models."""
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        db = app.extensions["service_db"]
        try:
            require_current(app, db, command=command)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        differences = drift(app, db)
        if differences:
            raise click.ClickException(f"the schema differs from the models: {differences}")
        click.echo("database is at the newest revision and matches the models")

    @group.command("revision")
    @click.option("-m", "--message", required=True, help="What the migration does, in a few words.")
    @with_app("worker")
    def revision_command(message: str) -> None:
        """For developers: write a migration from the difference between the models and an up-to-date database."""
        from flask_migrate import migrate as alembic_migrate

        app = current_app._get_current_object()  # type: ignore[attr-defined]
        upgrade(app)
        alembic_migrate(directory=_directory(app), message=message)

    return group
