"""The mailbox's scheduled work."""

from __future__ import annotations

import datetime as dt

from flask import Flask
from sqlalchemy import delete

from exchange.messaging.models import MailboxBatch
from federation.runtime import runtime
from service.worker import Task


def prune_mailbox_batches(app: Flask) -> int:
    """Forget collected transactions never acknowledged within an hour (their rows are collected again)."""
    rt = runtime()
    cutoff = rt.clock() - dt.timedelta(hours=1)
    result = rt.db.session.execute(delete(MailboxBatch).where(MailboxBatch.collected_at < cutoff))
    rt.db.session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


TASKS = [Task("prune-mailbox", prune_mailbox_batches, seconds=600, help=prune_mailbox_batches.__doc__ or "")]
