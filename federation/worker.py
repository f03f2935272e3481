"""A service's worker: the one process that delivers the outbox and runs scheduled jobs (service.worker).

``run`` takes the deployment's worker lock, then starts the delivery threads, the listener that turns
wake-ups from the web processes into deliveries, the scheduler of the service's tasks, and whatever the
service adds (a node's mailbox poll and directory refresher), and stops them all on SIGTERM.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from flask import Flask

from federation.runtime import Runtime
from service.worker import Task, listen, run_until_stopped, schedule

log = logging.getLogger(__name__)

Extra = Callable[[Runtime, threading.Event], Callable[[], None] | None]
"""Starts something more in the worker; returns how to stop it (or None)."""


def run(
    app: Flask, tasks: list[Task], *, extras: tuple[Extra, ...] = (), on_message: Callable[[str], None] | None = None
) -> None:
    rt: Runtime = app.extensions["hotline"]

    def handle(message: str) -> None:
        if message.startswith("@"):
            if on_message is not None:
                on_message(message)
        elif message:
            rt.worker.poke(message)

    def start(stop: threading.Event) -> Callable[[], None]:
        rt.worker.start()
        listener = threading.Thread(target=listen, args=(rt.db.engine, handle, stop), name="wakeups", daemon=True)
        listener.start()
        scheduler = schedule(app, tasks) if app.config["SCHEDULER_ENABLED"] else None
        stoppers = [stopper for extra in extras if (stopper := extra(rt, stop)) is not None]
        with app.app_context():
            rt.worker.poke_due()

        def shutdown() -> None:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            for stopper in stoppers:
                stopper()
            rt.worker.shutdown()
            rt.transport.close()

        return shutdown

    run_until_stopped(rt.db.engine, start, name=rt.member_id)
