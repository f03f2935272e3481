"""Intake pages: the public reporting page (public surface) and the queue of new reports (console).

The public pages follow the GOV.UK patterns: a start page that says what will happen and what not to
do, one form with the error summary at the top and each message next to its field, a confirmation
page with the reference and what happens next, and a status page that takes the reference. Every page
is in the language of its path (``/nl/report``); the site's bare address picks one by ``Accept-Language``.
Nothing here reads the reporter's address except the throttle, which only ever sees it hashed.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select

from audit.services import AuditLog
from console import i18n, page_json, page_number, paginate
from federation.ratelimit import RateLimitedError
from node.audit.models import AUDIT
from node.db import db
from node.intake import services
from node.intake.forms import SEEN_ON_LABELS, ReportForm, StatusForm
from node.intake.models import SOURCES, Submission
from node.partners.models import Partner
from people.sessions import StaffAccess, current_principal
from service.clock import now as _now
from service.policies import Public, policy
from service.throttle import AnonymousThrottle

log = logging.getLogger(__name__)

pages = Blueprint("intake", __name__, template_folder="templates")
queue_api = Blueprint("submissions_api", __name__, url_prefix="/api/v1/intake")

URL_MESSAGES = {
    "url_missing": _l("Enter the web address of the page, picture or video."),
    "url_too_long": _l("The web address is too long. Copy it again from your browser's address bar."),
    "unsupported_scheme": _l(
        "This kind of address cannot be reported. Copy the web address, starting with http:// or https://, "
        "from your browser's address bar."
    ),
    "credentials_in_url": _l(
        "The address contains a user name or password. Remove everything before the @ and try again. "
        "Never send us your own login details."
    ),
    "invalid_url": _l(
        "This is not a web address we can check. Copy it from your browser's address bar, for example "
        "https://example.com/page."
    ),
}

PUBLIC_STATUS_TEXT = {
    "received": (_l("Received"), _l("We have your report. An analyst will check it.")),
    "assessed": (_l("Assessed"), _l("An analyst has checked your report.")),
    "action_taken": (
        _l("Action taken"),
        _l(
            "We have acted on your report: we asked for the material to be removed, or passed it to the hotline "
            "or the police who can do that."
        ),
    ),
    "closed": (_l("Closed"), _l("We have finished with your report. Thank you for sending it.")),
}


def throttle() -> AnonymousThrottle:
    found: AnonymousThrottle = current_app.extensions["intake_throttle"]
    return found


def _limited(bucket: str) -> Response | None:
    """Count this request; over the limit, the page that says so (in the reporter's language)."""
    try:
        throttle().hit(bucket, request.remote_addr or "")
    except RateLimitedError as exc:
        minutes = max(1, (exc.retry_after or 60) // 60)
        response = make_response(
            render_template(
                "console/error.html",
                status=429,
                title=gettext("Too many requests"),
                message=gettext(
                    "Too many requests have come from your network in a short time. Wait %(minutes)d minutes "
                    "and try again.",
                    minutes=minutes,
                ),
            ),
            429,
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return None


# --- the public pages ----------------------------------------------------------------------------------


@pages.url_value_preprocessor
def _take_language(endpoint: str | None, values: dict[str, Any] | None) -> None:
    if values and "lang" in values:
        language = values.pop("lang")
        if language not in i18n.languages():
            abort(404)
        g.lang = language


@pages.url_defaults
def _keep_language(endpoint: str, values: dict[str, Any]) -> None:
    if "lang" not in values and g.get("lang"):
        values["lang"] = g.lang


def locale() -> str:
    """The public surface's language: the page's path, else the browser's preference."""
    return str(g.get("lang") or i18n.negotiated())


@pages.context_processor
def _languages() -> dict[str, Any]:
    return {
        "languages": [(code, i18n.display_name(code)) for code in i18n.languages()],
        "current_language": locale(),
        "emergency_number": current_app.config["PUBLIC_EMERGENCY_NUMBER"],
        "contact_days": current_app.config["PUBLIC_CONTACT_DAYS"],
    }


@pages.get("/")
@policy(Public("the public reporting page is for anyone"))
def root() -> Any:
    response = redirect(url_for("intake.start", lang=i18n.negotiated()))
    response.headers["Vary"] = "Accept-Language"
    return response


@pages.get("/<lang>/")
@policy(Public("the public reporting page is for anyone"))
def start() -> Any:
    return render_template("intake/start.html")


@pages.route("/<lang>/report", methods=["GET", "POST"])
@policy(Public("the public reporting page is for anyone"))
def report() -> Any:
    form = ReportForm()
    if request.method == "GET":
        return render_template("intake/report.html", form=form, seen_on=SEEN_ON_LABELS)
    limited = _limited("report")
    if limited is not None:
        return limited
    if form.nickname_confirm.data:
        # A script filled the field people never see: thank it and keep nothing.
        log.info("public report discarded: honeypot filled")
        session["sent_reference"] = services.new_reference()
        return redirect(url_for("intake.sent"))
    valid = form.validate()
    if form.csrf_token.errors:
        form.csrf_token.errors = []
        form.form_errors.append(
            gettext("For your security the form had expired. Check your answers and send them again.")
        )
        valid = False
    checked = None
    if form.url.data and not form.url.errors:
        try:
            checked = services.check_url(form.url.data)
        except services.IntakeError as refusal:
            form.url.errors = [*form.url.errors, str(URL_MESSAGES.get(refusal.code, URL_MESSAGES["invalid_url"]))]
            valid = False
    if not valid or checked is None:
        return render_template("intake/report.html", form=form, seen_on=SEEN_ON_LABELS), 422
    _submission, reference = services.receive_public(
        db.session,
        services.PublicReport(
            url=checked,
            seen_on=form.seen_on.data or "other",
            description=(form.description.data or "").strip() or None,
            contact_name=(form.contact_name.data or "").strip() or None,
            contact_email=(form.contact_email.data or "").strip() or None,
            language=locale(),
        ),
        now=_now(),
        contact_days=current_app.config["PUBLIC_CONTACT_DAYS"],
    )
    db.session.commit()
    session["sent_reference"] = reference
    return redirect(url_for("intake.sent"))


@pages.get("/<lang>/report/sent")
@policy(Public("the public reporting page is for anyone"))
def sent() -> Any:
    return render_template("intake/sent.html", reference=session.pop("sent_reference", None))


@pages.route("/<lang>/status", methods=["GET", "POST"])
@policy(Public("reporters look up their report with its reference"))
def status() -> Any:
    form = StatusForm()
    if request.method == "GET":
        return render_template("intake/status.html", form=form, found=None)
    limited = _limited("status")
    if limited is not None:
        return limited
    found = None
    if form.validate():
        if services.normalize_reference(form.reference.data or "") is None:
            form.reference.errors = [gettext("A reference has 16 letters and numbers, like 7KQ9-XWM2-PHDM-4TC1.")]
        else:
            found = services.find_by_reference(db.session, form.reference.data or "")
            if found is None:
                form.reference.errors = [
                    gettext("We cannot find a report with this reference. Check it and try again.")
                ]
    elif form.csrf_token.errors:
        form.csrf_token.errors = []
        form.form_errors.append(gettext("For your security the form had expired. Send it again."))
    if found is None:
        return render_template("intake/status.html", form=form, found=None), 422
    label, explanation = PUBLIC_STATUS_TEXT[found.public_status]
    return render_template(
        "intake/status.html", form=StatusForm(formdata=None), found=found, label=label, explanation=explanation
    )


# --- the reports as received, for scripts (personal API tokens) -------------------------------------------

STAFF = ("analyst", "supervisor")


def _filtered() -> Any:
    filters = {key: request.args.get(key, "").strip()[:200] for key in ("source", "partner", "q", "case")}
    query = select(Submission)
    if filters["source"] in SOURCES:
        query = query.where(Submission.source == filters["source"])
    if filters["partner"]:
        query = query.join(Partner, Partner.id == Submission.partner_id).where(Partner.client_id == filters["partner"])
    if filters["case"]:
        query = query.where(Submission.case_id == filters["case"])
    if filters["q"]:
        query = query.where(or_(Submission.id == filters["q"], Submission.canonical_url.contains(filters["q"])))
    return query.order_by(Submission.received_at, Submission.position, Submission.id)


# --- the same queue for scripts (personal API tokens) ------------------------------------------------------


def submission_view(found: Submission) -> dict[str, Any]:
    return {
        "id": found.id,
        "source": found.source,
        "partner_id": found.partner_id,
        "external_id": found.external_id,
        "url": found.url,
        "canonical_url": found.canonical_url,
        "url_fingerprint": found.url_fingerprint,
        "seen_on": found.seen_on,
        "description": found.description,
        "content_hashes": found.content_hashes,
        "has_contact": bool(found.contact_email),
        "language": found.language,
        "received_at": found.received_at.isoformat(),
        "case_id": found.case_id,
        "public_status": found.public_status,
    }


@queue_api.get("")
@policy(StaffAccess(roles=STAFF, api=True, tokens=True))
def list_submissions() -> Any:
    query = _filtered()
    number, size = page_number()
    page = paginate(db.session, query, number=number, size=size)
    return jsonify(page_json(page, submission_view))


@queue_api.get("/<submission_id>")
@policy(StaffAccess(roles=STAFF, api=True, tokens=True))
def get_submission(submission_id: str) -> Any:
    found = db.session.get(Submission, submission_id)
    if found is None:
        from federation.errors import ProtocolError

        raise ProtocolError(f"no report {submission_id} was received here", code="unknown_report", status=404)
    AuditLog(db.session, AUDIT).record(current_principal().actor, "submission.view", "submission", found.id, now=_now())
    db.session.commit()
    return jsonify(submission_view(found))
