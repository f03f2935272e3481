"""``hotline-exchange``: run and manage the exchange (``hotline-exchange --help``)."""

from __future__ import annotations

import json
from typing import Any

import click
from flask import Flask, current_app

from audit.commands import audit_group
from exchange.deadletters.cli import dead_letters_cli
from exchange.members.cli import members_cli
from exchange.routing.cli import routing_cli
from people.commands import accounts_group
from service.cli import service_group, with_app
from service.commands import outbox_command, tasks_group
from service.migrations import db_group, require_current

NAME = "hotline-exchange"


def _factory(**kwargs: Any) -> Flask:
    from exchange import create_app

    return create_app(**kwargs)


def _tasks() -> list[Any]:
    from exchange.surfaces import TASKS

    return TASKS


main = service_group(
    NAME,
    "Run and manage the hotline network's central exchange.\n\n"
    "Configuration: EXCHANGE_CONFIG=/path/to/exchange.toml (docs/operations.md). Each surface is its own "
    "process: `network` (mutual TLS, other services), `console` (the secretariat's people), `worker` "
    "(delivery and scheduled jobs, one per deployment).",
    _factory,
)


def _app() -> Flask:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    require_current(app, app.extensions["service_db"], command=NAME)
    return app


@main.command("network")
@with_app("network")
def network_command() -> None:
    """Serve the network surface: mutual TLS for the members' nodes (transactions, mailbox, directory)."""
    from federation.transport import make_server
    from service.serving import serve

    app = _app()
    config = app.config
    server = make_server(
        app,
        host=config["HOST"],
        port=config["PORT"],
        certificate=config["TLS_CERT"],
        key=config["TLS_KEY"],
        ca=config["CA_CERT"],
        threads=config["SERVER_THREADS"],
    )
    serve(server, name=f"{NAME} network", on_stopping=app.extensions["hotline"].mailbox.close)


@main.command("console")
@with_app("console")
def console_command() -> None:
    """Serve the console: the secretariat's pages and API (HTTPS with CONSOLE_TLS_CERT, else behind a proxy)."""
    from service.serving import serve, web_server

    app = _app()
    config = app.config
    server = web_server(
        app,
        host=config["CONSOLE_HOST"],
        port=config["CONSOLE_PORT"],
        threads=config["CONSOLE_THREADS"],
        cert=config["CONSOLE_TLS_CERT"],
        key=config["CONSOLE_TLS_KEY"],
    )
    serve(server, name=f"{NAME} console")


@main.command("worker")
@with_app("worker")
def worker_command() -> None:
    """Run the worker: delivery and scheduled jobs. One per deployment; a second one waits to take over."""
    from federation import worker

    worker.run(_app(), _tasks())


@main.command("status")
@with_app("worker")
def status_command() -> None:
    """Print the network-wide status as JSON."""
    from exchange.status.services import network_status
    from federation.runtime import runtime

    rt = runtime()
    click.echo(json.dumps(network_status(rt.db.session, now=rt.clock()), indent=2))


main.add_command(members_cli)
main.add_command(routing_cli)
main.add_command(dead_letters_cli)
main.add_command(accounts_group())
main.add_command(audit_group())
main.add_command(db_group(NAME))
main.add_command(outbox_command)
main.add_command(tasks_group(_tasks()))
