"""The operator API for outgoing reports (``/api/v1/reports``), for this node's own certificate."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from federation.runtime import runtime
from federation.web import json_body, require_own_certificate
from node.reports.models import Report
from node.reports.services import UnknownReportError, confirm_report, report_view

blueprint = Blueprint("reports", __name__, url_prefix="/api/v1/reports")


@blueprint.post("")
@require_own_certificate
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
    try:
        rt.db.session.commit()
    except IntegrityError:
        # The same key, sent twice at once: the other request stored it first; answer with that report.
        rt.db.session.rollback()
        report = rt.db.session.scalars(select(Report).where(Report.idempotency_key == key)).one()
        created = False
    return jsonify(report_view(rt.db.session, report)), 201 if created else 200


@blueprint.get("")
@require_own_certificate
def index() -> Any:
    rt = runtime()
    reports = rt.db.session.scalars(select(Report).order_by(Report.confirmed_at.desc()).limit(200))
    return jsonify([report_view(rt.db.session, report) for report in reports])


@blueprint.get("/<report_id>")
@require_own_certificate
def show(report_id: str) -> Any:
    rt = runtime()
    report = rt.db.session.get(Report, report_id)
    if report is None:
        raise UnknownReportError(f"no report {report_id}")
    return jsonify(report_view(rt.db.session, report))
