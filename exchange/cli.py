"""``hotline-exchange``: run and manage the exchange (``hotline-exchange --help``)."""

from __future__ import annotations

import json

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from exchange.members.cli import members_cli
from exchange.status.services import network_status
from federation.cli import deliver_command, init_db_command, outbox_command, serve_app
from federation.runtime import runtime


@click.command("serve")
@with_appcontext
def serve_command() -> None:
    """Serve the exchange over mutual TLS, with its delivery scheduler."""
    runtime().db.create_all()
    serve_app(current_app._get_current_object())  # type: ignore[attr-defined]


@click.command("status")
@with_appcontext
def status_command() -> None:
    """Print the network-wide status as JSON."""
    rt = runtime()
    click.echo(json.dumps(network_status(rt.db.session, now=rt.clock()), indent=2))


def register_commands(app: Flask) -> None:
    for command in (serve_command, status_command, members_cli, outbox_command, deliver_command, init_db_command):
        app.cli.add_command(command)


def _create_app() -> Flask:
    from exchange import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False)
def main() -> None:
    """Run and manage the hotline network exchange. Configuration: EXCHANGE_CONFIG=path/to/exchange.toml."""
