"""Commands both services share: ``serve`` (the mutual-TLS server with its scheduler) and ``outbox``."""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from federation.delivery import describe_outbox
from federation.runtime import runtime
from federation.scheduler import start_scheduler
from federation.transport import make_server

log = logging.getLogger(__name__)


def serve_app(app: Flask, *, on_started: Callable[[], None] | None = None) -> None:
    """Serve ``app`` over mutual TLS until SIGINT or SIGTERM, with its delivery scheduler running."""
    config = app.config
    rt = app.extensions["hotline"]
    server = make_server(
        app,
        host=config["HOST"],
        port=config["PORT"],
        certificate=config["TLS_CERT"],
        key=config["TLS_KEY"],
        ca=config["CA_CERT"],
        threads=config["SERVER_THREADS"],
    )
    # Idle keep-alive connections hold worker threads; do not let them delay a stop for long.
    server.shutdown_timeout = 1
    server.prepare()
    scheduler = start_scheduler(app, rt) if config["SCHEDULER_ENABLED"] else None
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    serving = threading.Thread(target=server.serve, name="server", daemon=True)
    serving.start()
    log.info("%s listening on https://%s:%s", rt.member_id, config["HOST"], server.bind_addr[1])
    if scheduler is not None:
        rt.worker.start()
        rt.worker.poke_due()
    if on_started is not None:
        on_started()
    try:
        while not stop.wait(0.5) and serving.is_alive():
            pass
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        rt.mailbox.close()
        server.stop()
        rt.worker.shutdown()
        rt.transport.close()
        log.info("%s stopped", rt.member_id)


@click.command("outbox")
@with_appcontext
def outbox_command() -> None:
    """Show the delivery queues: pending, dead letters, backoff, last contact."""
    rt = runtime()
    click.echo(json.dumps(describe_outbox(rt.db.session, rt.models["outbox"], rt.models["peer"]), indent=2))


@click.command("deliver")
@with_appcontext
def deliver_command() -> None:
    """Deliver everything that is due now, once, and report how many documents were settled."""
    rt = runtime()
    settled = 0
    for destination in rt.deliverer().due_destinations():
        settled += rt.deliverer().deliver_batch(destination)
    click.echo(f"settled {settled} documents")


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create the service's tables (idempotent)."""
    runtime().db.create_all()
    click.echo(f"database ready: {current_app.config['SQLALCHEMY_DATABASE_URI']}")
