"""The time, as the current app tells it: one clock per app, so that tests can move it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flask import Flask, current_app


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def init_app(app: Flask, clock: Callable[[], dt.datetime] = utcnow) -> None:
    """Give ``app`` its clock (the federation runtime's, where the surface has one)."""
    app.extensions["clock"] = clock


def now() -> dt.datetime:
    """What time it is for the current app."""
    found: Callable[[], dt.datetime] = current_app.extensions["clock"]
    return found()
