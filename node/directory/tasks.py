"""The directory's scheduled work."""

from __future__ import annotations

from flask import Flask

from node.directory.services import DirectoryCache
from service.worker import Task


def refresh_directory(app: Flask) -> str:
    """Fetch the signed member directory from the exchange now and store it."""
    directory: DirectoryCache = app.extensions["directory"]
    fetched = directory.fetch()
    return f"{len(fetched.members)} members, fallback {fetched.fallback or '(none)'}"


TASKS = [
    # The worker's directory refresher does this on its own (at start, periodically, and when a check asks);
    # the command fetches now.
    Task("refresh-directory", refresh_directory, help=refresh_directory.__doc__ or "", scheduled=False),
]
