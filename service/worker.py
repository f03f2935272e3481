"""One worker per deployment: the only process that runs scheduled jobs and sends what the outbox holds.

How it works:

- **Exactly one.** A worker takes a lock before it starts any work and holds it for its lifetime: a
  PostgreSQL session advisory lock on a connection of its own, or an exclusive ``flock`` on a file beside
  the SQLite database. A second worker started beside it waits on the lock and takes over within a
  second or two when the first dies (the database drops a dead connection's advisory lock; the kernel
  drops a dead process's flock), so a crashed worker never leaves the deployment without one.
- **Woken at once.** Web processes (the network, console and public surfaces) never send anything
  themselves. After a commit that queued documents they wake the worker: on PostgreSQL with
  ``pg_notify`` inside the committing transaction (delivered only if it commits), on SQLite with a
  datagram to an abstract local socket named after the database. The worker also polls every
  ``DELIVERY_POLL_SECONDS`` for anything due (retries, or a wake-up lost because the worker was
  starting), so a lost wake-up delays a document by at most that.
- **Jobs are thin.** Each package registers its scheduled jobs in its ``tasks.py`` as :class:`Task`: a
  name, an interval, and a plain function of the app that is also a CLI command (``tasks run NAME``).
  The worker runs them on one APScheduler; tests switch the scheduler off and call the functions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from service.memory import Trimmer

log = logging.getLogger(__name__)

CHANNEL = "hotline_wakeup"


@dataclass(frozen=True)
class Task:
    """A scheduled job: ``run(app)`` every ``seconds`` (or ``seconds_key`` from the config), also a command."""

    name: str
    run: Callable[[Flask], object]
    seconds: float = 60.0
    seconds_key: str | None = None
    help: str = ""
    scheduled: bool = True
    """False for work a long-running part of the worker already does (this is then only a command)."""
    at_start: bool = False
    """Also run a few seconds after the worker starts, not only one interval later (hourly work whose result
    people look for at once: the CRL a node holds, the network status figures)."""

    def interval(self, app: Flask) -> float:
        return float(app.config[self.seconds_key]) if self.seconds_key else self.seconds


# Locking --------------------------------------------------------------------------------------------


def _lock_key(engine: Engine) -> tuple[str, int]:
    name = f"hotline-worker:{engine.url.render_as_string(hide_password=True)}"
    return name, int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def worker_lock(engine: Engine, *, stop: threading.Event, poll_seconds: float = 0.5) -> Iterator[bool]:
    """Hold the deployment's worker lock for the block; wait for it while another worker holds it.

    Yields False if ``stop`` was set before the lock was taken.
    """
    if engine.dialect.name == "postgresql":
        _, key = _lock_key(engine)
        with engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            announced = False
            while not stop.is_set():
                if connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
                    break
                if not announced:
                    log.info("another worker holds the lock; waiting to take over")
                    announced = True
                stop.wait(poll_seconds)
            else:
                yield False
                return
            try:
                yield True
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        return
    path = Path(str(make_url(str(engine.url)).database) + ".worker.lock")
    with open(path, "a+b") as handle:
        announced = False
        while not stop.is_set():
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not announced:
                    log.info("another worker holds %s; waiting to take over", path)
                    announced = True
                stop.wait(poll_seconds)
        else:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# Waking the worker ------------------------------------------------------------------------------------


def _socket_name(engine: Engine) -> bytes:
    """An abstract (Linux) socket name for the SQLite database: no file, no path length limit."""
    database = os.path.realpath(str(make_url(str(engine.url)).database))
    return b"\0hotline-worker-" + hashlib.sha256(database.encode()).hexdigest()[:24].encode()


class Wakeup:
    """The web processes' side: wake the worker after a commit that gave it something to do."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._socket: socket.socket | None = None
        if not self.postgres:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._address = _socket_name(engine)

    def in_transaction(self, session: Any, messages: set[str]) -> None:
        """PostgreSQL: queue the notification in the committing transaction (delivered only if it commits)."""
        if self.postgres and messages:
            payload = ",".join(sorted(messages))
            session.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload})

    def now(self, message: str) -> None:
        """Wake the worker at once, outside any transaction (a request that cannot wait for a commit)."""
        if self.postgres:
            with self.engine.connect() as connection:
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                connection.execute(
                    text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": message}
                )
        else:
            self.after_commit({message})

    def after_commit(self, messages: set[str]) -> None:
        """SQLite: a datagram to the worker's socket, once the transaction is committed."""
        if self._socket is None or not messages:
            return
        # No worker listening right now (OSError): its poll finds the work within a second.
        with contextlib.suppress(OSError):
            self._socket.sendto(",".join(sorted(messages)).encode(), self._address)


def listen(engine: Engine, handle: Callable[[str], None], stop: threading.Event) -> None:
    """The worker's side: call ``handle(message)`` for every wake-up until ``stop`` (run it on a thread)."""
    if engine.dialect.name == "postgresql":
        import psycopg

        url = make_url(str(engine.url)).set(drivername="postgresql")
        while not stop.is_set():
            try:
                with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    while not stop.is_set():
                        for notice in connection.notifies(timeout=1.0, stop_after=100):
                            for message in notice.payload.split(","):
                                handle(message)
            except Exception:
                log.exception("listening for wake-ups failed; reconnecting in 1 s")
                stop.wait(1.0)
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(_socket_name(engine))
        receiver.settimeout(1.0)
        while not stop.is_set():
            try:
                data = receiver.recv(65536)
            except TimeoutError:
                continue
            for message in data.decode(errors="replace").split(","):
                handle(message)


# Running --------------------------------------------------------------------------------------------


START_DELAY_SECONDS = 3
"""How long after start a task marked ``at_start`` first runs (delivery and the directory come first)."""


def schedule(app: Flask, tasks: list[Task]) -> BackgroundScheduler:
    """Start one scheduler running every task at its interval, each inside an app context."""
    scheduler = BackgroundScheduler(timezone=dt.UTC)

    def job(task: Task) -> Callable[[], None]:
        starting = [task.at_start]

        def run() -> None:
            with app.app_context():
                try:
                    outcome = task.run(app)
                    if starting[0]:
                        starting[0] = False
                        log.info("task %s ran at start: %s", task.name, outcome)
                except Exception:
                    log.exception("task %s failed; it runs again at its next interval", task.name)

        return run

    tasks = [task for task in tasks if task.scheduled]
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=START_DELAY_SECONDS)
    for task in tasks:
        scheduler.add_job(
            job(task),
            "interval",
            seconds=task.interval(app),
            id=task.name,
            max_instances=1,
            coalesce=True,
            **({"next_run_time": soon} if task.at_start else {}),
        )
    scheduler.start()
    log.info("worker scheduler started: %s", ", ".join(f"{task.name} every {task.interval(app):g} s" for task in tasks))
    return scheduler


def run_until_stopped(
    engine: Engine,
    start: Callable[[threading.Event], Callable[[], None]],
    *,
    name: str,
) -> None:
    """Take the worker lock, run ``start(stop)`` (which returns its own shutdown), and wait for a signal."""
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with worker_lock(engine, stop=stop) as held:
        if not held:
            return
        log.info("%s worker started (pid %s)", name, os.getpid())
        shutdown = start(stop)
        trimmer = Trimmer()
        try:
            while not stop.wait(0.5):
                trimmer.tick()
        finally:
            shutdown()
            log.info("%s worker stopped", name)
    time.sleep(0)  # Let the lock's connection close before the process exits.
