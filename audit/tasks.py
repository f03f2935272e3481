"""The audit trail's scheduled work."""

from __future__ import annotations

import datetime as dt

from flask import Flask

from audit.services import sign_checkpoint
from people import staff_models
from service.worker import Task


def checkpoint_audit_chain(app: Flask) -> int | None:
    """Sign the head of the audit chain with the service's key, if it moved since the last checkpoint."""
    rt = app.extensions["hotline"]
    made = sign_checkpoint(rt.db.session, staff_models().audit, rt.signer, now=dt.datetime.now(dt.UTC))
    rt.db.session.commit()
    return made.seq if made else None


TASKS = [
    Task(
        "audit-checkpoint",
        checkpoint_audit_chain,
        seconds_key="AUDIT_CHECKPOINT_SECONDS",
        help=checkpoint_audit_chain.__doc__ or "",
    )
]
