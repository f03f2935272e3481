"""``hotline-node``: run and operate a member node (``hotline-node --help``)."""

from __future__ import annotations

import json
import logging

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from federation.cli import deliver_command, init_db_command, outbox_command, serve_app
from federation.errors import ProtocolError
from federation.mailbox import MailboxPoller
from federation.runtime import runtime
from node.cases.services import record_status
from node.directory.services import DirectoryCache, DirectoryRefresher
from node.reports.services import confirm_report, report_view

log = logging.getLogger(__name__)


@click.command("serve")
@with_appcontext
def serve_command() -> None:
    """Serve the node over mutual TLS, with its delivery scheduler."""
    rt = runtime()
    rt.db.create_all()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config

    def started() -> None:
        directory: DirectoryCache = app.extensions["directory"]
        try:
            directory.fetch()  # Before the hello: what the exchange then delivers is checked against it.
        except Exception as exc:
            log.warning("could not fetch the member directory at start (will retry): %s", exc)
        DirectoryRefresher(directory, interval=config["DIRECTORY_REFRESH_SECONDS"]).start()
        rt.worker.hello(config["EXCHANGE_ID"])
        if config["INBOUND_MODE"] == "pull":
            MailboxPoller(
                rt,
                exchange_id=config["EXCHANGE_ID"],
                exchange_url=config["EXCHANGE_URL"],
                wait_seconds=config["MAILBOX_WAIT_SECONDS"],
            ).start()

    serve_app(app, on_started=started)


@click.command("report")
@click.option("--url", required=True)
@click.option("--country", "hosting_country", required=True, help="Hosting country (ISO 3166-1 alpha-2).")
@click.option("--legal-status", type=click.Choice(["baseline", "nationally_illegal"]), default="baseline")
@click.option("--priority", type=click.Choice(["normal", "urgent"]), default="normal")
@click.option("--hash", "hashes", multiple=True, help="Content hash as ALG:HEX (md5, sha1, sha256, pdq); repeat.")
@click.option("--notes", default=None)
@with_appcontext
def report_command(
    url: str, hosting_country: str, legal_status: str, priority: str, hashes: tuple[str, ...], notes: str | None
) -> None:
    """Confirm a report and queue it for the exchange (a running node delivers it within a second)."""
    rt = runtime()
    data: dict[str, object] = {
        "url": url,
        "hosting_country": hosting_country,
        "legal_status": legal_status,
        "priority": priority,
    }
    data["content_hashes"] = [dict(zip(("alg", "value"), item.split(":", 1), strict=False)) for item in hashes]
    if notes:
        data["notes"] = notes
    try:
        report, _ = confirm_report(
            rt.db.session,
            signer=rt.signer,
            outbox=rt.outbox(),
            exchange_id=current_app.config["EXCHANGE_ID"],
            unverified_input=data,
            now=rt.clock(),
        )
    except ProtocolError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    rt.db.session.commit()
    click.echo(json.dumps(report_view(rt.db.session, report), indent=2))


@click.command("status")
@click.argument("case_id")
@click.argument("status")
@click.option("--note", default=None)
@with_appcontext
def status_command(case_id: str, status: str, note: str | None) -> None:
    """Record what happened to a case received from abroad (ntd_sent, removed, ...)."""
    rt = runtime()
    try:
        record_status(
            rt.db.session,
            signer=rt.signer,
            outbox=rt.outbox(),
            exchange_id=current_app.config["EXCHANGE_ID"],
            case_id=case_id,
            unverified_input={"status": status, "note": note},
            now=rt.clock(),
        )
    except ProtocolError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    rt.db.session.commit()
    click.echo(f"case {case_id}: {status}")


def register_commands(app: Flask) -> None:
    for command in (serve_command, report_command, status_command, outbox_command, deliver_command, init_db_command):
        app.cli.add_command(command)


def _create_app() -> Flask:
    from node import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False)
def main() -> None:
    """Run and operate a hotline node. Configuration: NODE_CONFIG=path/to/node.toml."""
