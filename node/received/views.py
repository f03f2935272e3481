"""Cases received from abroad, in the console (pages) and in the operator API (``/api/v1/received``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from audit.services import AuditLog
from console import page_json, page_number, paginate, search_clause
from federation.messages import CASE_STATUSES
from federation.runtime import runtime
from federation.web import json_body
from node.audit.models import AUDIT
from node.cases import assessment as vocabulary
from node.received.models import FINISHED, CaseEvent, InboundCase, InboundReport, is_open
from node.received.services import StatusInputError, case_view, received_case, record_status
from node.removal.schedule import NEVER_CHECKED
from people.forms import ConfirmForm, Form
from people.sessions import StaffAccess, current_principal
from service.policies import policy

STAFF = ("analyst", "supervisor")
pages = Blueprint("received", __name__, template_folder="templates")
api = Blueprint("received_api", __name__, url_prefix="/api/v1/received")

STATUS_LABELS = {
    "received": "Received",
    "assessed": "Assessed",
    "not_illegal_here": "Not illegal here",
    "ntd_sent": "Notice sent",
    "police_notified": "Police notified",
    "removed": "Removed",
    "reappeared": "Reappeared",
    "moved": "Moved",
}
CLOSED = FINISHED


class StatusForm(Form):
    status = SelectField(
        "What happened", choices=[(s, STATUS_LABELS[s]) for s in CASE_STATUSES], validators=[DataRequired()]
    )
    moved_to = StringField(
        "Moved to (country)",
        validators=[Optional(), Length(max=2, message="Give the two-letter country code, such as FR.")],
        filters=[lambda value: (value or "").strip().upper() or None],
    )
    note = TextAreaField(
        "Note for the reporting hotline",
        validators=[Optional(), Length(max=2000, message="Keep the note under 2,000 characters.")],
    )


def _filtered() -> tuple[Any, dict[str, str]]:
    filters = {key: request.args.get(key, "").strip()[:100] for key in ("status", "priority", "origin", "q", "open")}
    return received_list(filters), filters


def received_list(filters: dict[str, str]) -> Any:
    """The received cases the list's filters ask for, urgent first, then the oldest."""
    query = select(InboundCase)
    if filters["status"] in STATUS_LABELS:
        query = query.where(InboundCase.status == filters["status"])
    if filters["open"] == "1":
        query = query.where(is_open())
    if filters["priority"] in ("urgent", "normal"):
        query = query.where(InboundCase.priority == filters["priority"])
    if filters["origin"]:
        query = query.where(InboundCase.origin == filters["origin"])
    if filters["q"]:
        query = query.where(search_clause(InboundCase.id, InboundCase.url, filters["q"]))
    # The order of the queue indexes (models): read in order, never sorted, however many cases there are.
    return query.order_by(InboundCase.priority.desc(), InboundCase.received_at, InboundCase.id)


@dataclass(frozen=True)
class MovedHint:
    country: str
    checked_at: dt.datetime


def moved_suggestion(found: InboundCase, checks: list[Any], own_countries: tuple[str, ...]) -> MovedHint | None:
    """The latest removal check found the content up on a host the trace places in a country neither the
    case's nor ours: the content has probably moved. The analyst confirms (a trace can be wrong: a CDN
    edge, a stale address database), so nothing moves by itself."""
    if found.status in CLOSED:
        return None
    latest = next((check for check in checks if check.outcome == "up"), None)
    if latest is None or latest.country in (None, found.hosting_country) or latest.country in own_countries:
        return None
    return MovedHint(country=latest.country, checked_at=latest.checked_at)


def _describe(event: CaseEvent) -> str:
    label = STATUS_LABELS.get(event.status, event.status)
    moved_to = (event.extra or {}).get("moved_to")
    return f"{label} to {moved_to}: the case goes to that country's hotline" if moved_to else label


def _case(case_id: str) -> InboundCase:
    return received_case(runtime().db.session, case_id)


@pages.get("/received")
@policy(StaffAccess(roles=STAFF))
def index() -> Any:
    query, filters = _filtered()
    number, size = page_number()
    page = paginate(runtime().db.session, query, number=number, size=size)
    return render_template("received/index.html", page=page, filters=filters, labels=STATUS_LABELS)


@pages.get("/received/<case_id>")
@policy(StaffAccess(roles=STAFF))
def show(case_id: str) -> Any:
    return _show(_case(case_id), StatusForm())


def _show(found: InboundCase, form: StatusForm, status: int = 200) -> Any:
    from node.notices.views import notices_for
    from node.removal.views import checks_for

    watch, checks = checks_for(found.id, limit=5)
    notices = notices_for("received", found.id)
    moved_hint = moved_suggestion(found, checks, runtime().signer.identity.countries)
    if moved_hint and not form.moved_to.data and request.method == "GET":
        form.moved_to.data = moved_hint.country
    from node.notices.ladder import past_deadline

    step = past_deadline(
        runtime().db.session,
        now=runtime().clock(),
        hours=float(current_app.config["NOTICE_DEADLINE_HOURS"]),
        upstream_hours=float(current_app.config["NOTICE_UPSTREAM_DEADLINE_HOURS"]),
        only=found,
    )
    overdue = step[0].step if step else None
    rt = runtime()
    session = rt.db.session
    reports = list(
        session.scalars(
            select(InboundReport).where(InboundReport.case_id == found.id).order_by(InboundReport.received_at)
        )
    )
    events = list(session.scalars(select(CaseEvent).where(CaseEvent.case_id == found.id).order_by(CaseEvent.at)))
    timeline: list[dict[str, Any]] = [
        {
            "at": r.received_at,
            "who": r.origin,
            "what": f"Report received from {r.origin}" + (" (urgent)" if r.priority == "urgent" else ""),
            "kind": "urgent" if r.priority == "urgent" else "event",
        }
        for r in reports
    ]
    timeline += [
        {
            "at": e.at,
            "who": e.author,
            "what": _describe(e),
            "note": e.note,
            "kind": "removed" if e.status == "removed" else "status",
        }
        for e in events
    ]
    timeline.sort(key=lambda item: item["at"])
    moved_to = next((e.extra.get("moved_to") for e in reversed(events) if e.status == "moved"), None)
    AuditLog(session, AUDIT).record(current_principal().actor, "case.view", "case", found.id, now=rt.clock())
    session.commit()
    return render_template(
        "received/show.html",
        case=found,
        reports=reports,
        events=timeline,
        form=form,
        labels=STATUS_LABELS,
        closed=CLOSED,
        vocabulary=vocabulary,
        confirm=ConfirmForm(),
        notices=notices,
        overdue=overdue,
        watch=watch,
        checks=checks,
        moved_hint=moved_hint,
        moved_to=moved_to,
        checks_enabled=current_app.config["REMOVAL_CHECK_ENABLED"],
        never_checked=NEVER_CHECKED,
    ), status


@pages.post("/received/<case_id>/open")
@policy(StaffAccess(roles=STAFF))
def open_url(case_id: str) -> Any:
    """Opening the reported address of a case from abroad: deliberate and audited, as for the hotline's own
    cases (it counts on the supervisors' exposure page). The material is known: another hotline assessed it."""
    found = _case(case_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    rt = runtime()
    AuditLog(rt.db.session, AUDIT).record(
        current_principal().actor, "received.open_url", "case", found.id, now=rt.clock(), known=True
    )
    rt.db.session.commit()
    return render_template("cases/open.html", case=found, known=True, back=url_for("received.show", case_id=found.id))


@pages.post("/received/<case_id>/status")
@policy(StaffAccess(roles=STAFF))
def add_status(case_id: str) -> Any:
    found = _case(case_id)
    form = StatusForm()
    if not form.validate_on_submit():
        return _show(found, form, 422)
    rt = runtime()
    try:
        entered = {"status": form.status.data, "note": (form.note.data or "").strip() or None}
        if form.status.data == "moved" or form.moved_to.data:
            entered["moved_to"] = form.moved_to.data
        _record(found, entered)
    except StatusInputError as exc:
        target = form.moved_to if form.status.data == "moved" or form.moved_to.data else form.status
        target.errors = [*target.errors, exc.message]
        return _show(found, form, 422)
    rt.db.session.commit()
    label = STATUS_LABELS.get(form.status.data or "", form.status.data)
    flash(f"Recorded: {label}. Every hotline that reported this location is told.", "success")
    return redirect(url_for("received.show", case_id=case_id))


def _record(found: InboundCase, unverified_input: Any) -> CaseEvent:
    rt = runtime()
    event = record_status(
        rt.db.session,
        signer=rt.signer,
        outbox=rt.outbox(),
        exchange_id=current_app.config["EXCHANGE_ID"],
        case_id=found.id,
        unverified_input=unverified_input,
        now=rt.clock(),
        directory=current_app.extensions["directory"],
    )
    AuditLog(rt.db.session, AUDIT).record(
        current_principal().actor,
        "case.status",
        "case",
        found.id,
        now=rt.clock(),
        status=event.status,
        via=current_principal().via,
    )
    return event


# The operator API ---------------------------------------------------------------------------------------


@api.get("")
@policy(StaffAccess(roles=STAFF, api=True, tokens=True))
def list_cases() -> Any:
    rt = runtime()
    query, _ = _filtered()
    number, size = page_number()
    page = paginate(rt.db.session, query, number=number, size=size)
    return jsonify(page_json(page, lambda found: case_view(rt.db.session, found)))


@api.get("/<case_id>")
@policy(StaffAccess(roles=STAFF, api=True, tokens=True))
def get_case(case_id: str) -> Any:
    return jsonify(case_view(runtime().db.session, _case(case_id)))


@api.post("/<case_id>/status")
@policy(StaffAccess(roles=STAFF, api=True, tokens=True))
def post_status(case_id: str) -> Any:
    rt = runtime()
    found = _case(case_id)
    _record(found, json_body())
    rt.db.session.commit()
    return jsonify(case_view(rt.db.session, found)), 201
