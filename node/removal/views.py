"""The removal checks of a case received from abroad: what they found, "check now", and "do not fetch"."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, request, url_for
from sqlalchemy import select

from audit.services import AuditLog
from federation.errors import ProtocolError
from federation.web import json_body
from node.audit.models import AUDIT
from node.db import db
from node.received.models import InboundCase
from node.received.services import received_case
from node.removal.models import Check, Watch
from node.removal.schedule import NEVER_CHECKED, WHY_NOT_CHECKED, watch_of
from people.forms import ConfirmForm
from people.sessions import StaffAccess, current_principal
from service.clock import now as _now
from service.policies import policy

STAFF = ("analyst", "supervisor")
pages = Blueprint("removal", __name__)
api = Blueprint("removal_api", __name__, url_prefix="/api/v1")


def checks_for(case_id: str, limit: int = 10) -> tuple[Watch | None, list[Check]]:
    watch = db.session.get(Watch, ("received", case_id))
    found = db.session.scalars(
        select(Check)
        .where(Check.case_kind == "received", Check.case_id == case_id)
        .order_by(Check.checked_at.desc(), Check.id.desc())
        .limit(limit)
    )
    return watch, list(found)


def _case(case_id: str) -> InboundCase:
    return received_case(db.session, case_id)


class NotCheckedError(ProtocolError):
    status = 409
    code = "not_checked"


def _change(case: InboundCase, *, do_not_fetch: bool | None, check_now: bool) -> Watch:
    """Raises NotCheckedError: "check now" on a case whose status is never checked."""
    now = _now()
    if check_now and case.status in NEVER_CHECKED:
        raise NotCheckedError(f"the case {WHY_NOT_CHECKED[case.status]}, so its address is not checked any more")
    watch = watch_of(db.session, case.id, status=case.status, now=now)
    if do_not_fetch is not None and watch.do_not_fetch != do_not_fetch:
        watch.do_not_fetch = do_not_fetch
        AuditLog(db.session, AUDIT).record(
            current_principal().actor, "removal.do_not_fetch", "case", case.id, now=now, do_not_fetch=do_not_fetch
        )
    if check_now:
        watch.next_check_at = now
    return watch


def _at(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


@pages.post("/received/<case_id>/checks")
@policy(StaffAccess(roles=STAFF))
def change(case_id: str) -> Any:
    case = _case(case_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    action = request.form.get("action")
    if action not in ("check_now", "do_not_fetch", "allow_fetch"):
        abort(400)
    try:
        _change(
            case,
            do_not_fetch={"do_not_fetch": True, "allow_fetch": False}.get(action),
            check_now=action == "check_now",
        )
    except NotCheckedError as refused:  # A page from before the status changed.
        flash(f"{refused.message[0].upper()}{refused.message[1:]}.", "error")
        return redirect(url_for("received.show", case_id=case.id) + "#checks")
    db.session.commit()
    flash(
        {
            "check_now": "The address is checked within a minute.",
            "do_not_fetch": "The address will not be fetched: removal checks are off for this case.",
            "allow_fetch": "Removal checks are on again for this case.",
        }[action],
        "success",
    )
    return redirect(url_for("received.show", case_id=case.id) + "#checks")


def check_view(check: Check) -> dict[str, Any]:
    return {
        "checked_at": check.checked_at.isoformat(),
        "outcome": check.outcome,
        "http_status": check.http_status,
        "final_url": check.final_url,
        "elapsed_ms": check.elapsed_ms,
        "error": check.error,
    }


@api.get("/received/<case_id>/checks")
@policy(StaffAccess(roles=STAFF, api=True, tokens=True))
def api_checks(case_id: str) -> Any:
    watch, found = checks_for(_case(case_id).id, limit=100)
    return jsonify(
        {
            "do_not_fetch": bool(watch and watch.do_not_fetch),
            "next_check_at": _at(watch.next_check_at) if watch else None,
            "items": [check_view(c) for c in found],
        }
    )


@api.post("/received/<case_id>/checks")
@policy(StaffAccess(roles=STAFF, api=True, tokens=True))
def api_change(case_id: str) -> Any:
    """``{"do_not_fetch": true|false}`` and/or ``{"check_now": true}``."""
    case = _case(case_id)
    body = json_body()
    if not isinstance(body, dict) or not set(body) <= {"do_not_fetch", "check_now"} or not body:
        raise ProtocolError(
            "send do_not_fetch (true or false) and/or check_now (true)", code="invalid_input", status=422
        )
    if any(not isinstance(value, bool) for value in body.values()):
        raise ProtocolError("do_not_fetch and check_now are true or false", code="invalid_input", status=422)
    watch = _change(case, do_not_fetch=body.get("do_not_fetch"), check_now=bool(body.get("check_now")))
    db.session.commit()
    return jsonify({"do_not_fetch": watch.do_not_fetch, "next_check_at": _at(watch.next_check_at)})
