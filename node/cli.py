"""``hotline-node``: run and operate a member node (``hotline-node --help``)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import click
from flask import Flask, current_app

from audit.commands import audit_group
from node.hosting.commands import hosting_group
from node.referrals.commands import referrals_group
from people.commands import accounts_group
from service.cli import service_group, with_app
from service.commands import outbox_command, tasks_group
from service.migrations import db_group, require_current

NAME = "hotline-node"
log = logging.getLogger(__name__)


def _factory(**kwargs: Any) -> Flask:
    from node import create_app

    return create_app(**kwargs)


def _tasks() -> list[Any]:
    from node.surfaces import TASKS

    return TASKS


main = service_group(
    NAME,
    "Run and operate a member hotline's node.\n\n"
    "Configuration: NODE_CONFIG=/path/to/node.toml (docs/operations.md). Each surface is its own process: "
    "`network` (mutual TLS, the exchange; push mode only), `console` (analysts and supervisors), `public` "
    "(the reporting page and the partner API; no signing key), `worker` (delivery, the mailbox, scheduled "
    "jobs; one per node).",
    _factory,
)


def _app() -> Flask:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    require_current(app, app.extensions["service_db"], command=NAME)
    return app


@main.command("network")
@with_app("network")
def network_command() -> None:
    """Serve the network surface: mutual TLS, for transactions the exchange pushes (push mode)."""
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
    serve(server, name=f"{NAME} network")


def _serve_web(app: Flask, prefix: str, label: str) -> None:
    from service.serving import serve, web_server

    config = app.config
    server = web_server(
        app,
        host=config[f"{prefix}_HOST"],
        port=config[f"{prefix}_PORT"],
        threads=config[f"{prefix}_THREADS"],
        cert=config[f"{prefix}_TLS_CERT"],
        key=config[f"{prefix}_TLS_KEY"],
    )
    serve(server, name=f"{NAME} {label}")


@main.command("console")
@with_app("console")
def console_command() -> None:
    """Serve the console for analysts and supervisors (HTTPS with CONSOLE_TLS_CERT, else behind a proxy)."""
    _serve_web(_app(), "CONSOLE", "console")


@main.command("public")
@with_app("public")
def public_command() -> None:
    """Serve the public surface: the reporting page and the partner API. It never holds the signing key."""
    _serve_web(_app(), "PUBLIC", "public")


def _directory_refresher(rt: Any, stop: threading.Event) -> Callable[[], None]:
    from node.directory.services import DirectoryRefresher

    refresher = DirectoryRefresher(rt.app.extensions["directory"], interval=rt.app.config["DIRECTORY_REFRESH_SECONDS"])
    refresher.start()
    return refresher.stop


def _hello_and_poll(rt: Any, stop: threading.Event) -> Callable[[], None] | None:
    """Greet the exchange (so it retries us at once), and in pull mode keep a long-poll open to it."""
    from federation.mailbox import MailboxPoller

    config = rt.app.config
    rt.worker.hello(config["EXCHANGE_ID"])
    if config["INBOUND_MODE"] != "pull":
        return None
    poller = MailboxPoller(
        rt,
        exchange_id=config["EXCHANGE_ID"],
        exchange_url=config["EXCHANGE_URL"],
        wait_seconds=config["MAILBOX_WAIT_SECONDS"],
    )
    poller.start()
    return poller.stop


@main.command("worker")
@with_app("worker")
def worker_command() -> None:
    """Run the worker: delivery, the mailbox poll (pull mode), the directory, scheduled jobs. One per node."""
    from federation import worker
    from node.directory.services import WAKE_REFRESH

    app = _app()

    def on_message(message: str) -> None:
        if message == WAKE_REFRESH:
            app.extensions["directory"].wanted.set()

    worker.run(app, _tasks(), extras=(_directory_refresher, _hello_and_poll), on_message=on_message)


@main.command("report")
@click.option("--url", required=True)
@click.option("--country", "hosting_country", required=True, help="Hosting country (ISO 3166-1 alpha-2).")
@click.option("--legal-status", type=click.Choice(["baseline", "nationally_illegal"]), default="baseline")
@click.option("--priority", type=click.Choice(["normal", "urgent"]), default="normal")
@click.option("--hash", "hashes", multiple=True, help="Content hash as ALG:HEX (md5, sha1, sha256, pdq); repeat.")
@click.option("--notes", default=None)
@with_app("worker")
def report_command(
    url: str, hosting_country: str, legal_status: str, priority: str, hashes: tuple[str, ...], notes: str | None
) -> None:
    """Confirm a report and queue it for the exchange (the worker delivers it within a second)."""
    from audit.services import AuditLog
    from federation.runtime import runtime
    from node.audit.models import AUDIT
    from node.reports.services import confirm_report, report_view

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
    report, _ = confirm_report(
        rt.db.session,
        signer=rt.signer,
        outbox=rt.outbox(),
        exchange_id=current_app.config["EXCHANGE_ID"],
        unverified_input=data,
        now=rt.clock(),
    )
    AuditLog(rt.db.session, AUDIT).record("cli", "report.confirm", "report", report.id, now=rt.clock())
    rt.db.session.commit()
    click.echo(json.dumps(report_view(rt.db.session, report), indent=2))


@main.command("case-status")
@click.argument("case_id")
@click.argument("status")
@click.option("--note", default=None, help="Free text for the hotline that first reported it (it alone).")
@with_app("worker")
def case_status_command(case_id: str, status: str, note: str | None) -> None:
    """Record what happened to a case received from abroad (ntd_sent, removed, ...)."""
    from audit.services import AuditLog
    from federation.runtime import runtime
    from node.audit.models import AUDIT
    from node.received.services import record_status

    rt = runtime()
    record_status(
        rt.db.session,
        signer=rt.signer,
        outbox=rt.outbox(),
        exchange_id=current_app.config["EXCHANGE_ID"],
        case_id=case_id,
        unverified_input={"status": status, "note": note},
        now=rt.clock(),
    )
    AuditLog(rt.db.session, AUDIT).record("cli", "case.status", "case", case_id, now=rt.clock(), status=status)
    rt.db.session.commit()
    click.echo(f"case {case_id}: {status}")


main.add_command(accounts_group())
main.add_command(audit_group())
main.add_command(db_group(NAME))
main.add_command(hosting_group)
main.add_command(referrals_group)
main.add_command(outbox_command)
main.add_command(tasks_group(_tasks()))
