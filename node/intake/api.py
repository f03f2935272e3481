"""The partner API (public surface): submit reports, one or a batch, and read back their status.

Every call is authenticated by :class:`~node.partners.oauth.PartnerAccess` (a bearer token from
``/oauth/token`` with the operation's scope), written to the audit trail in the transaction that does
the work, and answered in JSON; errors are RFC 9457 problem documents with a machine-readable ``code``.
The document at ``/openapi.json`` describes exactly this (``node.intake.openapi``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import select

from audit.services import AuditLog
from console import Page, page_json, paginate
from federation.errors import ProtocolError
from federation.timestamps import parse_timestamp
from node.audit.models import AUDIT
from node.db import db
from node.intake import openapi, services
from node.intake.models import Submission
from node.partners.oauth import PartnerAccess, PartnerPrincipal, TokenRefusedError, current_partner
from schemas import SchemaValidationError
from service.clock import now as _now
from service.policies import Public, policy

api = Blueprint("partner_api", __name__, url_prefix="/api/v1/reports")
document = Blueprint("partner_api_document", __name__)

WRITE = PartnerAccess("reports:write")
READ = PartnerAccess("reports:read")
MAX_PAGE = 100_000
MAX_PER_PAGE = 200


class ParameterError(ProtocolError):
    status = 400
    code = "invalid_parameter"


def _audit(action: str, object_id: str, **detail: Any) -> None:
    AuditLog(db.session, AUDIT).record(current_partner().actor, action, "partner", object_id, now=_now(), **detail)


def _json_request() -> bytes:
    content_type = (request.mimetype or "").lower()
    if content_type != "application/json":
        raise ProtocolError("send the body as application/json", code="unsupported_media_type", status=415)
    return request.get_data(cache=False)


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 200 or not all(0x21 <= ord(char) <= 0x7E for char in key):
        raise ProtocolError(
            "Idempotency-Key must be 1 to 200 printable ASCII characters without spaces", code="invalid_idempotency_key"
        )
    return key


def _answer(status: int, body: dict[str, Any], *, replayed: bool = False) -> Response:
    if status >= 400:
        response = jsonify(body)
        response.mimetype = "application/problem+json"
    else:
        response = jsonify(body)
    response.status_code = status
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _submit(action: str, handle: Any) -> Response:
    """The shared path of both submit operations: idempotency, one transaction, the audit entry."""
    principal = current_partner()
    partner_id = principal.partner.id
    key = _idempotency_key()
    raw = _json_request()
    fingerprint = services.request_fingerprint(request.method, request.path, raw)
    if key is not None:
        earlier = services.replay(db.session, partner_id, key, fingerprint)
        if earlier is not None:
            _audit(action, partner_id, replayed=True)
            db.session.commit()
            return _answer(*earlier, replayed=True)
    status, body, counts = handle(services.body_json(raw))
    if key is not None:
        services.remember(db.session, partner_id, key, fingerprint, status, body, _now())
    principal.partner.last_used_at = _now()
    _audit(action, partner_id, **counts)
    db.session.commit()
    return _answer(status, body)


def _counts(outcomes: list[services.ItemOutcome]) -> dict[str, int]:
    return {
        "accepted": sum(1 for o in outcomes if o.outcome == "accepted"),
        "duplicates": sum(1 for o in outcomes if o.outcome == "duplicate"),
        "refused": sum(1 for o in outcomes if o.outcome == "refused"),
    }


@api.post("")
@policy(WRITE)
def submit_one() -> Any:
    def handle(unverified: Any) -> tuple[int, dict[str, Any], dict[str, int]]:
        if not isinstance(unverified, dict):
            raise SchemaValidationError("partner-report: at (top level): must be of type object")
        outcome = services.receive_partner_reports(db.session, current_partner().partner.id, [unverified], now=_now())[
            0
        ]
        counts = _counts([outcome])
        if outcome.outcome == "refused":
            problem = {
                "type": "about:blank",
                "title": "Not acceptable",
                "status": 422,
                "detail": outcome.detail,
                "code": outcome.code,
            }
            return 422, problem, counts
        body = outcome.to_json()
        body.pop("index", None)
        body["status"] = "received" if outcome.outcome == "accepted" else _status_of(outcome.id)
        return (201 if outcome.outcome == "accepted" else 200), body, counts

    return _submit("partner.reports.submit", handle)


@api.post("/batch")
@policy(WRITE)
def submit_batch() -> Any:
    def handle(unverified: Any) -> tuple[int, dict[str, Any], dict[str, int]]:
        items = services.parse_batch(unverified)
        outcomes = services.receive_partner_reports(db.session, current_partner().partner.id, items, now=_now())
        counts = _counts(outcomes)
        return 200, {"results": [outcome.to_json() for outcome in outcomes], **counts}, counts

    return _submit("partner.reports.batch", handle)


def _status_of(submission_id: str | None) -> str:
    found = db.session.get(Submission, submission_id) if submission_id else None
    return found.public_status if found is not None else "received"


def serialize(submission: Submission) -> dict[str, Any]:
    return {
        "id": submission.id,
        "external_id": submission.external_id,
        "url": submission.url,
        "status": submission.public_status,
        "received_at": submission.received_at.isoformat().replace("+00:00", "Z"),
        "status_changed_at": submission.status_changed_at.isoformat().replace("+00:00", "Z"),
    }


def _time_parameter(name: str) -> dt.datetime | None:
    value = request.args.get(name)
    if value is None:
        return None
    try:
        openapi.check_date_time(value)
        return parse_timestamp(value)
    except (ValueError, SchemaValidationError):
        raise ParameterError(f"{name} must be an RFC 3339 date-time, like 2026-11-29T10:00:00Z") from None


def _int_parameter(name: str, default: int, maximum: int) -> int:
    value = request.args.get(name)
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= maximum:
        raise ParameterError(f"{name} must be a whole number from 1 to {maximum}")
    return int(value)


@api.get("")
@policy(READ)
def list_reports() -> Any:
    partner = current_partner().partner
    since, until, changed = _time_parameter("since"), _time_parameter("until"), _time_parameter("changed_since")
    number = _int_parameter("page", 1, MAX_PAGE)
    size = _int_parameter("per_page", 50, MAX_PER_PAGE)
    query = select(Submission).where(Submission.partner_id == partner.id)
    if since is not None:
        query = query.where(Submission.received_at >= since)
    if until is not None:
        query = query.where(Submission.received_at < until)
    if changed is not None:
        query = query.where(Submission.status_changed_at >= changed)
    query = query.order_by(Submission.received_at, Submission.position, Submission.id)
    page: Page = paginate(db.session, query, number=number, size=size)
    _audit("partner.reports.list", partner.id, page=page.number, rows=len(page.items))
    db.session.commit()
    return jsonify(page_json(page, serialize))


@api.get("/<report_id>")
@policy(READ)
def get_report(report_id: str) -> Any:
    partner = current_partner().partner
    found = db.session.get(Submission, report_id) if len(report_id) <= 36 else None
    _audit("partner.reports.read", partner.id, report=report_id[:36], found=found is not None)
    db.session.commit()
    if found is None or found.partner_id != partner.id:
        # Another partner's report, or the public's, is answered exactly like one that does not exist.
        raise ProtocolError("no report of yours has this id", code="unknown_report", status=404)
    return jsonify(serialize(found))


@document.get("/openapi.json")
@policy(Public("the API's description is public, like its documentation"))
def openapi_document() -> Any:
    return jsonify(openapi.document(service_name=current_app.config.get("HOTLINE_NAME") or "Hotline"))


@api.errorhandler(ProtocolError)
def refused(error: ProtocolError) -> Response:
    """A refused call: nothing of it is kept, but a known partner's refusal is in the audit trail."""
    from console import problem

    db.session.rollback()
    principal = g.get("principal")
    if isinstance(principal, PartnerPrincipal):
        AuditLog(db.session, AUDIT).record(
            principal.actor,
            "partner.refused",
            "partner",
            principal.partner.id,
            now=_now(),
            method=request.method,
            path=request.path[:200],
            code=error.code,
        )
        db.session.commit()
    response = problem(error.status, error.code, error.message)
    if isinstance(error, TokenRefusedError):
        response.headers["WWW-Authenticate"] = error.challenge
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response
