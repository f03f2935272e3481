"""When a received case's address is next checked.

Every received case has a watch from the moment it is opened (a report from abroad, or a case of our
own hosted here), due at once. The removal-check job reads the watches that are due through one index, in
the order they fell due, so its cost does not grow with the number of cases received. A case found not
illegal here, or moved to another country, is not fetched: its watch has no next check until its status
says otherwise.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from node.removal.models import Watch
from service.database import DBSession

WHY_NOT_CHECKED = {"not_illegal_here": "was found not illegal here", "moved": "moved to another country"}
NEVER_CHECKED = tuple(WHY_NOT_CHECKED)
"""Statuses under which a received case's address is never fetched."""


def new_watch(case_id: str, *, status: str, now: dt.datetime) -> dict[str, Any]:
    """The watch of a case opened now, as a row: due at once unless its status is never checked."""
    return {
        "case_kind": "received",
        "case_id": case_id,
        "do_not_fetch": False,
        "next_check_at": None if status in NEVER_CHECKED else now,
        "last_outcome": None,
    }


def watch_of(session: DBSession, case_id: str, *, status: str, now: dt.datetime) -> Watch:
    """The case's watch; a case opened before watches were made with it gets one now."""
    watch = session.get(Watch, ("received", case_id))
    if watch is None:
        watch = Watch(**new_watch(case_id, status=status, now=now))
        session.add(watch)
    return watch


def follow_status(session: DBSession, case_id: str, status: str, *, now: dt.datetime) -> None:
    """A received case's status changed: a status never checked takes the watch off the schedule, and a
    case leaving one (an analyst correcting "not illegal here") is due again at once."""
    watch = watch_of(session, case_id, status=status, now=now)
    if status in NEVER_CHECKED:
        watch.next_check_at = None
    elif watch.next_check_at is None:
        watch.next_check_at = now
