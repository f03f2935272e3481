"""Logging for every service: one line per event, to stderr, at the configured level."""

from __future__ import annotations

import logging

from flask import Flask


def init_app(app: Flask) -> None:
    level = app.config["LOG_LEVEL"]
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    # cheroot and urllib3 are chatty at INFO; their errors still show.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
