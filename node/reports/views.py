"""Reports sent abroad, in the console (pages) and in the operator API (``/api/v1/reports``).

The API is for scripts and integrations: a personal API token (or a session, for reading) acts as its
account; every report confirmed through it is in the audit trail under that account. Lists page on the
server (``page``, ``per_page`` up to 200) and say how many there are.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from audit.services import AuditLog
from console import page_json, page_number, paginate, search_clause
from federation.errors import ProtocolError
from federation.runtime import runtime
from federation.signing import short_id
from federation.web import json_body
from node.audit.models import AUDIT
from node.received.models import CaseEvent, InboundCase, is_open
from node.reports.models import DUPLICATE, RECEIVED, REFUSED, SENT, Report, is_waiting
from node.reports.services import UnknownReportError, confirm_batch, confirm_report, report_view
from people.sessions import StaffAccess, current_principal
from service.policies import policy

STAFF = ("analyst", "supervisor")
pages = Blueprint("reports", __name__, template_folder="templates")
api = Blueprint("reports_api", __name__, url_prefix="/api/v1/reports")

STATES = {SENT: "Awaiting receipt", RECEIVED: "Received", DUPLICATE: "Joined a case", REFUSED: "Refused"}


def _filtered() -> tuple[Any, dict[str, str]]:
    filters = {key: request.args.get(key, "").strip()[:100] for key in ("state", "country", "priority", "q")}
    return sent_list(filters), filters


NEWEST_FIRST = (Report.confirmed_at.desc(), Report.id.desc())
"""The order of the reports sent: ``ix_reports_order`` read backwards, so never sorted."""


def sent_list(filters: dict[str, str]) -> Any:
    """The reports sent abroad the list's filters ask for, newest first."""
    query = select(Report)
    if filters["state"] in STATES:
        query = query.where(Report.state == filters["state"])
    if len(filters["country"]) == 2:
        query = query.where(Report.hosting_country == filters["country"].upper())
    if filters["priority"] in ("urgent", "normal"):
        query = query.where(Report.priority == filters["priority"])
    if filters["q"]:
        query = query.where(search_clause(Report.id, Report.url, filters["q"]))
    return query.order_by(*NEWEST_FIRST)


@pages.get("/")
@policy(StaffAccess(roles=STAFF))
def home() -> Any:
    session = runtime().db.session
    sent = dict(session.execute(select(Report.state, func.count()).where(is_waiting()).group_by(Report.state)).all())
    received = session.scalar(select(func.count()).select_from(InboundCase)) or 0
    open_cases = session.scalar(select(func.count()).select_from(InboundCase).where(is_open())) or 0
    urgent = (
        session.scalar(select(func.count()).select_from(InboundCase).where(InboundCase.priority == "urgent", is_open()))
        or 0
    )
    recent = list(session.scalars(select(Report).order_by(*NEWEST_FIRST).limit(5)))
    latest = list(session.scalars(select(InboundCase).order_by(InboundCase.received_at.desc()).limit(5)))
    from node.cases.views import queue_counts
    from node.notices.ladder import past_deadline

    return render_template(
        "reports/home.html",
        queues=queue_counts(),
        overdue=len(
            past_deadline(
                session,
                now=runtime().clock(),
                hours=float(current_app.config["NOTICE_DEADLINE_HOURS"]),
                upstream_hours=float(current_app.config["NOTICE_UPSTREAM_DEADLINE_HOURS"]),
            )
        ),
        sent=sent,
        received=received,
        open_cases=open_cases,
        urgent=urgent,
        recent=recent,
        latest=latest,
        states=STATES,
    )


@pages.get("/reports")
@policy(StaffAccess(roles=STAFF))
def index() -> Any:
    query, filters = _filtered()
    number, size = page_number()
    page = paginate(runtime().db.session, query, number=number, size=size)
    return render_template("reports/index.html", page=page, filters=filters, states=STATES)


@pages.get("/reports/<report_id>")
@policy(StaffAccess(roles=STAFF))
def show(report_id: str) -> Any:
    rt = runtime()
    report = rt.db.session.get(Report, report_id)
    if report is None:
        raise UnknownReportError(f"no report {report_id} was sent from here")
    view = report_view(rt.db.session, report)
    AuditLog(rt.db.session, AUDIT).record(current_principal().actor, "report.view", "report", report.id, now=rt.clock())
    rt.db.session.commit()
    return render_template("reports/show.html", report=report, view=view, states=STATES, events=report_timeline(report))


def describe_event(event: CaseEvent) -> str:
    """A status (or the exchange's reroute notice) on a case we follow, in words."""
    extra = event.extra or {}
    if event.status == "moved" and extra.get("moved_to"):
        return f"Moved: the content is now hosted in {extra['moved_to']}"
    if event.status == "rerouted":
        again = "; this hotline sent its report again" if extra.get("resent") else ""
        return (
            f"Re-routed to {extra.get('destination')} ({extra.get('hosting_country')}), first-report time kept{again}"
        )
    return event.status.replace("_", " ").capitalize()


def report_timeline(report: Report) -> list[dict[str, Any]]:
    """One chronological story: confirmed, received, joined a case, every status, refused."""
    events: list[dict[str, Any]] = [
        {"at": report.confirmed_at, "who": "this hotline", "what": "Confirmed and forwarded"}
    ]
    if report.state == DUPLICATE and report.case_id:
        events.append(
            {
                "at": report.received_at or report.confirmed_at,
                "who": "exchange",
                "what": f"Joined case {short_id(report.case_id)}, first reported {report.first_reported_at:%Y-%m-%d}"
                if report.first_reported_at
                else f"Joined case {short_id(report.case_id)}",
            }
        )
    if report.received_at:
        events.append(
            {"at": report.received_at, "who": report.destination, "what": f"Received by {report.destination}"}
        )
    if report.case_id:
        for event in runtime().db.session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == report.case_id).order_by(CaseEvent.at)
        ):
            events.append(
                {
                    "at": event.at,
                    "who": event.author,
                    "what": describe_event(event),
                    "note": event.note,
                    "kind": "removed" if event.status == "removed" else "status",
                }
            )
    if report.state == REFUSED:
        events.append(
            {"at": report.refused_at, "who": "exchange", "what": f"Refused: {report.refused_reason}", "kind": "refused"}
        )
    return sorted(events, key=lambda item: item["at"] or report.confirmed_at)


# The operator API ---------------------------------------------------------------------------------------


@api.post("")
@policy(StaffAccess(roles=STAFF, api=True, tokens=True))
def create() -> Any:
    rt = runtime()
    key = request.headers.get("Idempotency-Key")
    report, created = confirm_report(
        rt.db.session,
        signer=rt.signer,
        outbox=rt.outbox(),
        exchange_id=current_app.config["EXCHANGE_ID"],
        unverified_input=json_body(),
        now=rt.clock(),
        idempotency_key=key,
    )
    if created:
        AuditLog(rt.db.session, AUDIT).record(
            current_principal().actor,
            "report.confirm",
            "report",
            report.id,
            now=rt.clock(),
            hosting_country=report.hosting_country,
            priority=report.priority,
            via=current_principal().via,
        )
    try:
        rt.db.session.commit()
    except IntegrityError:
        # The same key, sent twice at once: the other request stored it first; answer with that report.
        rt.db.session.rollback()
        report = rt.db.session.scalars(select(Report).where(Report.idempotency_key == key)).one()
        created = False
    return jsonify(report_view(rt.db.session, report)), 201 if created else 200


@api.post("/batch")
@policy(StaffAccess(roles=STAFF, api=True, tokens=True))
def create_batch() -> Any:
    """Confirm and forward many reports in one request (a hotline's own system feeding the network): one
    database transaction, one outcome per report; the worker sends them to the exchange 50 to a transaction."""
    rt = runtime()
    results = confirm_batch(
        rt.db.session,
        signer=rt.signer,
        outbox=rt.outbox(),
        exchange_id=current_app.config["EXCHANGE_ID"],
        unverified_input=json_body(),
        now=rt.clock(),
    )
    accepted = [result["id"] for result in results if result["outcome"] == "accepted"]
    if accepted:
        AuditLog(rt.db.session, AUDIT).record(
            current_principal().actor,
            "report.confirm_batch",
            "report",
            accepted[0],
            now=rt.clock(),
            count=len(accepted),
            reports=accepted,
            via=current_principal().via,
        )
    try:
        rt.db.session.commit()
    except IntegrityError as exc:
        # Another request stored one of these idempotency keys meanwhile: sent again, it answers duplicate.
        rt.db.session.rollback()
        raise ProtocolError(
            "another request stored a report with one of these idempotency keys at the same moment; send the "
            "batch again (reports stored already answer duplicate)",
            code="idempotency_conflict",
            status=409,
        ) from exc
    counts = {
        outcome: sum(1 for r in results if r["outcome"] == outcome) for outcome in ("accepted", "duplicate", "refused")
    }
    return jsonify({"results": results, **counts}), 200


@api.get("")
@policy(StaffAccess(roles=STAFF, api=True, tokens=True))
def list_reports() -> Any:
    rt = runtime()
    query, _ = _filtered()
    number, size = page_number()
    page = paginate(rt.db.session, query, number=number, size=size)
    return jsonify(page_json(page, lambda report: report_view(rt.db.session, report)))


@api.get("/<report_id>")
@policy(StaffAccess(roles=STAFF, api=True, tokens=True))
def get_report(report_id: str) -> Any:
    rt = runtime()
    report = rt.db.session.get(Report, report_id)
    if report is None:
        raise UnknownReportError(f"no report {report_id}")
    return jsonify(report_view(rt.db.session, report))
