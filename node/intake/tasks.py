"""Intake's scheduled work: keeping the promises the reporting page makes about what is kept."""

from __future__ import annotations

import datetime as dt

from flask import Flask

from node.db import db
from node.intake.services import forget_contacts, prune_idempotency
from node.partners.services import PartnerBook
from service.worker import Task


def forget_reporter_contacts(app: Flask) -> int:
    """Erase reporters' names and email addresses whose time is up (PUBLIC_CONTACT_DAYS after the report)."""
    erased = forget_contacts(db.session, now=dt.datetime.now(dt.UTC))
    db.session.commit()
    return erased


def prune_partner_records(app: Flask) -> int:
    """Forget Idempotency-Key answers older than IDEMPOTENCY_HOURS and tokens expired over a day ago."""
    now = dt.datetime.now(dt.UTC)
    pruned = prune_idempotency(db.session, now=now, keep=dt.timedelta(hours=app.config["IDEMPOTENCY_HOURS"]))
    pruned += PartnerBook(db.session).prune_tokens(now=now)
    db.session.commit()
    return pruned


TASKS = [
    Task("forget-contacts", forget_reporter_contacts, seconds=3600, help=forget_reporter_contacts.__doc__ or ""),
    Task("prune-partner-records", prune_partner_records, seconds=3600, help=prune_partner_records.__doc__ or ""),
]
