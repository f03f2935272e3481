"""The network's scheduled work, run by the worker (service.worker) and each also a CLI command."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import delete

from federation.runtime import runtime
from service.database import checkpoint
from service.worker import Task


def deliver_due(app: Flask) -> int:
    """Deliver everything that is due (retries whose backoff ran out, pokes lost to a restart).

    In the worker this hands the destinations to its delivery threads; from the command line it delivers
    them here and now, and returns how many documents were settled.
    """
    rt = runtime()
    if rt.worker.started:
        rt.worker.poke_due()
        return 0
    settled = 0
    for destination in rt.deliverer().due_destinations():
        while (count := rt.deliverer().deliver_batch(destination)) > 0:
            settled += count
    return settled


def prune_replay_records(app: Flask) -> int:
    """Forget transaction ids older than twice the clock-skew window (older ones are refused as stale)."""
    rt = runtime()
    model = rt.models["seen"]
    result = rt.db.session.execute(delete(model).where(model.issued_at < rt.clock() - 2 * rt.clock_skew))
    rt.db.session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def copy_log(app: Flask) -> bool:
    """Copy SQLite's write-ahead log into the database, here rather than in a request's commit."""
    return checkpoint(runtime().db.engine, truncate=False)


def forget_erased(app: Flask) -> bool:
    """Make erased tokens unrecoverable from the database files (SQLite: a truncating checkpoint)."""
    return checkpoint(runtime().db.engine)


TASKS = [
    Task("deliver", deliver_due, seconds_key="DELIVERY_POLL_SECONDS", help=deliver_due.__doc__ or ""),
    Task("prune-replay", prune_replay_records, seconds=600, help=prune_replay_records.__doc__ or ""),
    Task("checkpoint", copy_log, seconds_key="CHECKPOINT_SECONDS", help=copy_log.__doc__ or ""),
    Task("forget", forget_erased, seconds_key="FORGET_SECONDS", help=forget_erased.__doc__ or ""),
]
