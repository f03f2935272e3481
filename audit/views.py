"""The audit trail in the console: read, filter and export (supervisors and secretariat admins)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request, stream_with_context
from sqlalchemy import Select, select

from audit.services import AuditModels, export_csv
from console import iterate_query, page_number, paginate
from people.sessions import StaffAccess
from service.database import db_of
from service.policies import policy


def _day(value: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(value or "", "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def audit_blueprint(models: AuditModels, *, readers: tuple[str, ...]) -> Blueprint:
    bp = Blueprint("audit", __name__, template_folder="templates")
    access = StaffAccess(roles=readers)

    def filtered() -> tuple[Select[Any], dict[str, str]]:
        entry = models.entry
        filters = {key: request.args.get(key, "").strip()[:80] for key in ("actor", "action", "object", "from", "to")}
        query = select(entry)
        if filters["actor"]:
            query = query.where(entry.actor.contains(filters["actor"]))
        if filters["action"]:
            query = query.where(entry.action.startswith(filters["action"]))
        if filters["object"]:
            query = query.where(entry.object_id == filters["object"])
        start, end = _day(filters["from"]), _day(filters["to"])
        if start:
            query = query.where(entry.at >= start)
        if end:
            query = query.where(entry.at < end + dt.timedelta(days=1))
        return query.order_by(entry.seq.desc()), filters

    @bp.get("/audit")
    @policy(access)
    def index() -> Any:
        query, filters = filtered()
        number, size = page_number(default_size=50)
        page = paginate(db_of(current_app).session, query, number=number, size=size)
        return render_template("audit/index.html", page=page, filters=filters)

    @bp.get("/audit.csv")
    @policy(access)
    def export() -> Any:
        query, _ = filtered()
        rows = iterate_query(db_of(current_app).session, query)
        response = Response(stream_with_context(export_csv(rows)), mimetype="text/csv")
        response.headers["Content-Disposition"] = 'attachment; filename="audit.csv"'
        return response

    return bp
