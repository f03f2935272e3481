"""The exchange worker's ``status-rollup`` job: keep the network status cells up to date."""

from __future__ import annotations

from flask import Flask

from exchange.status.rollup import roll_up
from service.worker import Task


def roll_up_status(app: Flask) -> int:
    """Recompute the network status cells of the months whose cases changed since the last run (all of
    them on the first run), from the audit trail. Returns how many months it recomputed (-1: all)."""
    rt = app.extensions["hotline"]
    done = roll_up(rt.db.session, now=rt.clock())
    rt.db.session.commit()
    return -1 if done.months is None else len(done.months)


TASKS = [
    Task(
        "status-rollup",
        roll_up_status,
        seconds_key="STATUS_ROLLUP_SECONDS",
        help=roll_up_status.__doc__ or "",
        at_start=True,
    )
]
