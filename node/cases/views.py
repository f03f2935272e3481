"""The operator API for cases received from abroad (``/api/v1/cases``), for this node's own certificate."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from sqlalchemy import select

from federation.runtime import runtime
from federation.web import json_body, require_own_certificate
from node.cases.models import InboundCase
from node.cases.services import UnknownCaseError, case_view, record_status

blueprint = Blueprint("cases", __name__, url_prefix="/api/v1/cases")


@blueprint.get("")
@require_own_certificate
def index() -> Any:
    rt = runtime()
    cases = rt.db.session.scalars(
        select(InboundCase).order_by(InboundCase.priority.desc(), InboundCase.received_at).limit(200)
    )
    return jsonify([case_view(rt.db.session, case) for case in cases])


@blueprint.get("/<case_id>")
@require_own_certificate
def show(case_id: str) -> Any:
    rt = runtime()
    case = rt.db.session.get(InboundCase, case_id)
    if case is None:
        raise UnknownCaseError(f"no case {case_id}")
    return jsonify(case_view(rt.db.session, case))


@blueprint.post("/<case_id>/status")
@require_own_certificate
def add_status(case_id: str) -> Any:
    rt = runtime()
    record_status(
        rt.db.session,
        signer=rt.signer,
        outbox=rt.outbox(),
        exchange_id=current_app.config["EXCHANGE_ID"],
        case_id=case_id,
        unverified_input=json_body(),
        now=rt.clock(),
    )
    rt.db.session.commit()
    case = rt.db.session.get(InboundCase, case_id)
    if case is None:  # record_status checked it exists; it cannot vanish between two lines.
        raise UnknownCaseError(f"no case {case_id}")
    return jsonify(case_view(rt.db.session, case)), 201
