"""One background scheduler per serving process: it polls for due deliveries and prunes replay records.

Jobs are thin: each pushes nothing itself and calls a plain function that is also a CLI command, so
tests switch the scheduler off and call the functions directly.
"""

from __future__ import annotations

import datetime as dt
import logging

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy import delete

from federation.database import checkpoint
from federation.runtime import Runtime

log = logging.getLogger(__name__)


def prune_replay_records(rt: Runtime) -> int:
    """Forget transaction ids older than twice the clock-skew window (older ones are refused as stale)."""
    model = rt.models["seen"]
    cutoff = rt.clock() - 2 * rt.clock_skew
    with rt.app.app_context():
        result = rt.db.session.execute(delete(model).where(model.issued_at < cutoff))
        rt.db.session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def prune_mailbox_batches(rt: Runtime) -> int:
    """Forget collected transactions never acknowledged within an hour (their rows are collected again)."""
    model = rt.models.get("mailbox_batch")
    if model is None:
        return 0
    with rt.app.app_context():
        result = rt.db.session.execute(delete(model).where(model.collected_at < rt.clock() - dt.timedelta(hours=1)))
        rt.db.session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def forget_erased(rt: Runtime) -> bool:
    """Make erased tokens unrecoverable from the database files (SQLite: a truncating checkpoint)."""
    with rt.app.app_context():
        return checkpoint(rt.db.engine)


def start_scheduler(app: Flask, rt: Runtime) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=dt.UTC)
    scheduler.add_job(
        rt.worker.poke_due,
        "interval",
        seconds=app.config["DELIVERY_POLL_SECONDS"],
        id="deliver",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        prune_replay_records, "interval", args=[rt], minutes=10, id="prune", max_instances=1, coalesce=True
    )
    scheduler.add_job(
        prune_mailbox_batches, "interval", args=[rt], minutes=10, id="prune-mailbox", max_instances=1, coalesce=True
    )
    scheduler.add_job(
        forget_erased,
        "interval",
        args=[rt],
        seconds=app.config["FORGET_SECONDS"],
        id="forget",
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    log.info("scheduler started: delivery poll every %s s", app.config["DELIVERY_POLL_SECONDS"])
    return scheduler
