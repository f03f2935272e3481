"""The analyst's day in the console: the queues, the case page and its actions, and the same for scripts.

Views parse, authorize (their policy), call :class:`~node.cases.services.CaseBook` and render; every
change is audited by the book and committed here. Network I/O (the triage lookup) happens outside any
open transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import and_, exists, func, select
from werkzeug.datastructures import MultiDict
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from audit.services import AuditLog, entries_about
from console import page_json, page_number, paginate, search_clause
from federation.errors import ProtocolError
from federation.runtime import runtime
from node.audit.models import AUDIT
from node.cases import assessment as vocabulary
from node.cases.assessment import AssessmentForm
from node.cases.models import ASSESSED, CLOSED, FORWARDED, HOSTED_HERE, NEW, OPEN_STATES, REVIEW, STATES, Case
from node.cases.services import CLOSE_REASONS, CaseBook, CaseError
from node.cases.triage import triage
from node.db import db
from node.hosting.services import tools, trace
from node.intake.models import SOURCES, Submission
from node.partners.models import Partner
from node.received.models import InboundCase, is_open
from node.reports.models import Report
from people.forms import ConfirmForm, Form
from people.sessions import StaffAccess, current_principal
from service.clock import now as _now
from service.policies import policy

STAFF = ("analyst", "supervisor")
pages = Blueprint("cases", __name__, template_folder="templates")
api = Blueprint("cases_api", __name__, url_prefix="/api/v1/cases")

STATE_LABELS = {
    NEW: "New",
    REVIEW: "Awaiting review",
    ASSESSED: "Assessed: decide where it goes",
    FORWARDED: "Forwarded abroad",
    HOSTED_HERE: "Hosted here: notice and police",
    CLOSED: "Closed",
}
QUEUES = {
    "new": "New",
    "mine": "Assigned to me",
    "review": "Awaiting review",
    "ready": "Ready to route",
    "here": "Hosted here",
    "all": "All cases",
}
AGES = {"1": "Last 24 hours", "7": "Last 7 days", "30": "Last 30 days", "older": "Older than 30 days"}


def _country(value: str) -> str:
    return value.strip().upper()


class CountryForm(Form):
    country = StringField(
        "Hosting country",
        validators=[
            DataRequired("Enter the country's two-letter code, like DE."),
            Length(min=2, max=2, message="Two letters, like DE."),
        ],
    )
    reason = TextAreaField(
        "Why", validators=[DataRequired("Say why: the next analyst and the audit trail need it."), Length(max=1000)]
    )


class CloseForm(Form):
    reason = SelectField(
        "Why close it",
        choices=[("", "Choose a reason"), *CLOSE_REASONS.items()],
        validators=[DataRequired("Choose a reason.")],
    )
    note = TextAreaField(
        "Note (staff only)", validators=[Optional(), Length(max=2000, message="At most 2,000 characters.")]
    )


class ReviewForm(Form):
    decision = SelectField("Decision", choices=[("approve", "Approve"), ("return", "Return to the analyst")])
    note = TextAreaField("Note", validators=[Optional(), Length(max=2000, message="At most 2,000 characters.")])


class AssignForm(Form):
    to = SelectField("Assign to", validators=[Optional()])


class DecideForm(Form):
    decision = SelectField("Decision", choices=[("forward", "Forward"), ("here", "Keep here")])


# --- helpers ------------------------------------------------------------------------------------------


def _actor() -> str:
    return current_principal().actor


def _me() -> str:
    return str(current_principal().account.username)


def _is_supervisor() -> bool:
    return current_principal().role == "supervisor"


def _case(case_id: str) -> Case:
    found = db.session.get(Case, case_id) if len(case_id) <= 36 else None
    if found is None:
        raise ProtocolError(f"no case {case_id[:36]} at this hotline", code="unknown_case", status=404)
    return found


def _book() -> CaseBook:
    return CaseBook(db.session, actor=_actor(), now=_now())


def _staff_usernames() -> list[str]:
    from people import staff_models

    model = staff_models().account
    return list(
        db.session.scalars(
            select(model.username).where(model.disabled_at.is_(None), model.role.in_(STAFF)).order_by(model.username)
        )
    )


def _our_countries() -> tuple[str, ...]:
    return tuple(runtime().signer.identity.countries)


def _destination_for(country: str) -> tuple[str | None, bool]:
    """Who the exchange will route ``country`` to (from the signed directory), and whether that is the
    network's fallback because no member covers it."""
    directory = current_app.extensions["directory"].current(db.session)
    covering = sorted(
        member
        for member, entry in directory.members.items()
        if entry["status"] == "active" and country in entry["countries"]
    )
    if covering:
        return covering[0], False
    return directory.fallback, True


def _filtered(queue: str) -> tuple[Any, dict[str, str]]:
    keys = ("source", "partner", "country", "legal", "state", "age", "q", "assignee")
    filters = {key: request.args.get(key, "").strip()[:200] for key in keys}
    query = select(Case)
    if queue == "new":
        query = query.where(Case.state == NEW)
    elif queue == "mine":
        query = query.where(Case.assigned_to == _me(), Case.state.in_((*OPEN_STATES, HOSTED_HERE)))
    elif queue == "review":
        query = query.where(Case.state == REVIEW)
    elif queue == "ready":
        query = query.where(Case.state == ASSESSED)
    elif queue == "here":
        query = query.where(Case.state == HOSTED_HERE)
    if filters["state"] in STATES:
        query = query.where(Case.state == filters["state"])
    if filters["source"] in SOURCES:
        query = query.where(exists().where(and_(Submission.case_id == Case.id, Submission.source == filters["source"])))
    if filters["partner"]:
        query = query.where(
            exists().where(and_(Submission.case_id == Case.id, Submission.partner_id == filters["partner"]))
        )
    if filters["country"]:
        query = query.where(Case.hosting_country == _country(filters["country"])[:2])
    if filters["legal"] in vocabulary.LEGAL_STATUSES:
        query = query.where(Case.legal_status == filters["legal"])
    if filters["assignee"] == "none":
        query = query.where(Case.assigned_to.is_(None))
    elif filters["assignee"]:
        query = query.where(Case.assigned_to == filters["assignee"])
    if filters["age"] in AGES:
        now = _now()
        if filters["age"] == "older":
            query = query.where(Case.first_reported_at < now - dt.timedelta(days=30))
        else:
            query = query.where(Case.first_reported_at >= now - dt.timedelta(days=int(filters["age"])))
    if filters["q"]:
        query = query.where(search_clause(Case.id, Case.canonical_url, filters["q"]))
    # Urgent first ('urgent' > 'normal'), then oldest: the order of the ix_cases_queue and ix_cases_order
    # indexes, so a deep page walks an index instead of sorting every case.
    return query.order_by(Case.priority.desc(), Case.first_reported_at, Case.id), filters


def queue_counts() -> dict[str, int]:
    """Open work per queue, for the tabs and the home page."""
    session = db.session
    by_state = dict(
        session.execute(select(Case.state, func.count()).where(Case.state != CLOSED).group_by(Case.state)).all()
    )
    mine = session.scalar(
        select(func.count())
        .select_from(Case)
        .where(Case.assigned_to == _me(), Case.state.in_((*OPEN_STATES, HOSTED_HERE)))
    )
    received = session.scalar(select(func.count()).select_from(InboundCase).where(is_open()))
    urgent = session.scalar(
        select(func.count()).select_from(Case).where(Case.priority == "urgent", Case.state.in_(OPEN_STATES))
    )
    return {
        "new": by_state.get(NEW, 0),
        "mine": mine or 0,
        "review": by_state.get(REVIEW, 0),
        "ready": by_state.get(ASSESSED, 0),
        "here": by_state.get(HOSTED_HERE, 0),
        "received": received or 0,
        "urgent": urgent or 0,
    }


def _sources(case_ids: list[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    if case_ids:
        for case_id, source in db.session.execute(
            select(Submission.case_id, Submission.source).where(Submission.case_id.in_(case_ids)).distinct()
        ):
            found.setdefault(case_id, set()).add(source)
    return found


# --- the queues -------------------------------------------------------------------------------------------


@pages.get("/cases")
@policy(StaffAccess(roles=STAFF))
def index() -> Any:
    queue = request.args.get("queue", "new")
    queue = queue if queue in QUEUES else "new"
    query, filters = _filtered(queue)
    number, size = page_number()
    page = paginate(db.session, query, number=number, size=size)
    assign = AssignForm()
    assign.to.choices = [("", "Nobody (back to the queue)"), *((u, u) for u in _staff_usernames())]
    return render_template(
        "cases/index.html",
        page=page,
        queue=queue,
        queues=QUEUES,
        counts=queue_counts(),
        filters=filters,
        sources=_sources([c.id for c in page.items]),
        states=STATE_LABELS,
        legal=vocabulary.LEGAL_STATUSES,
        ages=AGES,
        assign=assign,
        supervisor=_is_supervisor(),
    )


@pages.post("/cases/assign")
@policy(StaffAccess(roles=("supervisor",)))
def bulk_assign() -> Any:
    form = AssignForm()
    form.to.choices = [("", ""), *((u, u) for u in _staff_usernames())]
    ids = [value for value in request.form.getlist("case_id") if len(value) <= 36][:200]
    if not form.validate() or not ids:
        flash("Choose the cases (tick them) and whom to give them to.", "error")
        return redirect(request.referrer if _same_site(request.referrer) else url_for("cases.index"))
    cases = list(db.session.scalars(select(Case).where(Case.id.in_(ids))))
    changed = _book().assign(cases, form.to.data or None)
    db.session.commit()
    flash(
        f"{changed} case{'s' if changed != 1 else ''} now with {form.to.data or 'nobody (back in the queue)'}.",
        "success",
    )
    return redirect(request.referrer if _same_site(request.referrer) else url_for("cases.index"))


def _same_site(target: str | None) -> bool:
    return bool(target) and str(target).startswith(request.host_url)


# --- the case page -----------------------------------------------------------------------------------------


def _reporters(case: Case) -> list[dict[str, Any]]:
    partners = {p.id: p for p in db.session.scalars(select(Partner))}
    rows = []
    for submission in db.session.scalars(
        select(Submission).where(Submission.case_id == case.id).order_by(Submission.received_at, Submission.position)
    ):
        partner = partners.get(submission.partner_id or "")
        rows.append({"submission": submission, "partner": partner})
    return rows


ACTION_TEXT = {
    "case.reopen": "Opened again: reported after it was closed",
    "case.assign": "Assigned",
    "case.triage": "Asked the network",
    "case.assess": "Assessed",
    "case.review": "Reviewed",
    "case.trace": "Traced the hosting",
    "case.country_override": "Hosting country set by hand",
    "case.decide": "Routing decided",
    "case.close": "Closed",
    "case.open_url": "Opened the reported address",
    "case.view": "Viewed",
}


def _describe(entry: Any) -> tuple[str, str | None, str]:
    detail = entry.detail or {}
    what = ACTION_TEXT.get(entry.action, entry.action)
    note = None
    kind = "event"
    if entry.action == "case.assign":
        what = f"Assigned to {detail.get('after')}" if detail.get("after") else "Back in the queue"
    elif entry.action == "case.triage":
        network = str(detail.get("network"))
        what = {
            "known": "The network knows this location",
            "unknown": "The network does not know this location",
            "unreachable": "The network could not be asked",
        }.get(network, what)
        if detail.get("material"):
            what += f"; {detail['material']} content hash(es) seen elsewhere"
        kind = "status" if detail.get("known") else "event"
    elif entry.action == "case.assess":
        assessed = detail.get("assessment") or {}
        what = f"Assessed: {vocabulary.label('legal_status', assessed.get('legal_status'))}"
        if assessed.get("priority") == "urgent":
            kind = "urgent"
    elif entry.action == "case.review":
        what = "Assessment approved" if detail.get("approved") else "Assessment returned to the analyst"
        note = detail.get("note")
    elif entry.action == "case.trace":
        what = f"Traced {detail.get('host') or 'the host'}: " + (
            f"suggests {detail['suggested']}" if detail.get("suggested") else "no country found"
        )
    elif entry.action == "case.country_override":
        what = f"Hosting country set to {detail.get('after')} (was {detail.get('before') or 'unknown'})"
        note = detail.get("reason")
    elif entry.action == "case.decide":
        if detail.get("decision") == "forward":
            to = detail.get("destination") or f"the hotline covering {detail.get('country')}"
            what = f"Forwarded through the exchange to {to}"
            if detail.get("fallback"):
                what += f", the network's fallback: no member covers {detail.get('country')}"
        else:
            what = f"Kept here: hosted in {detail.get('country')}"
        kind = "status"
    elif entry.action == "case.close":
        reason = str(detail.get("reason"))
        what = f"Closed: {CLOSE_REASONS.get(reason, reason)}"
    elif entry.action == "case.open_url":
        kind = "urgent" if detail.get("known") else "event"
    return what, note, kind


def timeline(case: Case, reporters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Everything that happened to the case, oldest first, each line with who and when."""
    events: list[dict[str, Any]] = []
    for row in reporters:
        submission, partner = row["submission"], row["partner"]
        who = f"partner {partner.name}" if partner else "a member of the public"
        events.append({"at": submission.received_at, "who": who, "what": "Reported", "kind": "event"})
    for entry in reversed(entries_about(db.session, AUDIT, "case", case.id, limit=500)):
        if entry.action == "case.view":
            continue
        what, note, kind = _describe(entry)
        events.append(
            {"at": entry.at, "who": entry.actor.removeprefix("account:"), "what": what, "note": note, "kind": kind}
        )
    if case.report_id:
        report = db.session.get(Report, case.report_id)
        if report is not None:
            from node.reports.views import report_timeline

            events.extend(event for event in report_timeline(report) if event["what"] != "Confirmed and forwarded")
    return sorted(events, key=lambda item: item["at"] or case.first_reported_at)


def next_action(case: Case, *, four_eyes: bool) -> str:
    if case.state == NEW:
        if case.assessment and case.reviewed_by is None and four_eyes and case.assessed_by:
            return "Returned by the reviewer: assess it again."
        warn = "The network knows it: read what it says before opening anything. " if case.known else ""
        return warn + "Next: assess it, then trace where it is hosted."
    if case.state == REVIEW:
        return "Next: a supervisor other than the assessor approves the assessment or returns it."
    if case.state == ASSESSED:
        if case.legal_status == "not_illegal":
            return "Next: close it as not illegal; the reporter will see “closed”."
        if not case.hosting_country:
            return "Next: trace where it is hosted (or set the country by hand), then decide where it goes."
        return "Next: decide where it goes."
    if case.state == FORWARDED:
        return "Forwarded: the receiving hotline's receipt and status appear below as they arrive."
    if case.state == HOSTED_HERE:
        return "Hosted here: its notices, removal checks and police referral are on its page under Received."
    return "Closed. A new report of this address opens it again."


def _show(found: Case, *, forms: dict[str, Any] | None = None, status: int = 200) -> Any:
    forms = forms or {}
    four_eyes = bool(current_app.config["FOUR_EYES_REVIEW"])
    reporters = _reporters(found)
    AuditLog(db.session, AUDIT).record(_actor(), "case.view", "case", found.id, now=_now())
    db.session.commit()
    assessment_form = forms.get("assess") or _assessment_form(found)
    assign = forms.get("assign") or AssignForm(to=found.assigned_to or "")
    assign.to.choices = [("", "Nobody (back to the queue)"), *((u, u) for u in _staff_usernames())]
    destination, fallback = None, False
    directory_error = None
    if found.state == ASSESSED and found.hosting_country and found.hosting_country not in _our_countries():
        try:
            destination, fallback = _destination_for(found.hosting_country)
        except ProtocolError as exc:
            directory_error = exc.message
    report = db.session.get(Report, found.report_id) if found.report_id else None
    here_case = None
    if found.state == HOSTED_HERE:
        here_case = db.session.scalars(
            select(InboundCase).where(InboundCase.url_fingerprint == found.url_fingerprint)
        ).first()
    return (
        render_template(
            "cases/show.html",
            case=found,
            reporters=reporters,
            events=timeline(found, reporters),
            states=STATE_LABELS,
            next_action=next_action(found, four_eyes=four_eyes),
            vocabulary=vocabulary,
            assessment_form=assessment_form,
            country_form=forms.get("country") or CountryForm(prefix="where", country=found.hosting_country or ""),
            close_form=forms.get("close") or CloseForm(prefix="close"),
            review_form=forms.get("review") or ReviewForm(prefix="review"),
            assign=assign,
            confirm=ConfirmForm(),
            our_countries=_our_countries(),
            destination=destination,
            fallback=fallback,
            directory_error=directory_error,
            report=report,
            here_case=here_case,
            four_eyes=four_eyes,
            supervisor=_is_supervisor(),
            me=_me(),
        ),
        status,
    )


def _assessment_form(found: Case, formdata: Any = None) -> AssessmentForm:
    if formdata is not None:
        return AssessmentForm(formdata=formdata)
    recorded = found.assessment or {}
    hashes = "\n".join(f"{h['alg']}:{h['value']}" for h in recorded.get("content_hashes", []))
    if not recorded:
        # Hashes the reporters sent are a starting point for the analyst.
        sent = {
            (h["alg"], h["value"])
            for hs in db.session.scalars(select(Submission.content_hashes).where(Submission.case_id == found.id))
            for h in hs or []
        }
        hashes = "\n".join(f"{alg}:{value}" for alg, value in sorted(sent))
    return AssessmentForm(
        formdata=None,
        legal_status=recorded.get("legal_status"),
        media_type=recorded.get("media_type", ""),
        age_group=recorded.get("age_group", ""),
        gender=recorded.get("gender", ""),
        site_type=recorded.get("site_type", ""),
        commercial=recorded.get("commercial", False),
        payment_method=recorded.get("payment_method", ""),
        virtual=recorded.get("virtual", False),
        urgent=recorded.get("priority") == "urgent",
        urgent_reason=recorded.get("urgent_reason", ""),
        content_hashes=hashes,
        notes=recorded.get("notes", ""),
    )


@pages.get("/cases/<case_id>")
@policy(StaffAccess(roles=STAFF))
def show(case_id: str) -> Any:
    found = _case(case_id)
    if found.triaged_at is None and found.state == NEW:
        _triage([found])
    return _show(found)


def _triage(cases: list[Case]) -> None:
    db.session.commit()  # Nothing stays open across the network call.
    rt = runtime()
    config = current_app.config
    triage(rt, db.session, cases, exchange_id=config["EXCHANGE_ID"], exchange_url=config["EXCHANGE_URL"], now=_now())
    db.session.commit()


def _done(found: Case, message: str) -> Any:
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("cases.show", case_id=found.id))


@pages.post("/cases/<case_id>/open")
@policy(StaffAccess(roles=STAFF))
def open_url(case_id: str) -> Any:
    """Opening a reported address is a deliberate, recorded act; the link is shown only on this answer."""
    found = _case(case_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    AuditLog(db.session, AUDIT).record(
        _actor(), "case.open_url", "case", found.id, now=_now(), known=found.known, state=found.state
    )
    db.session.commit()
    return render_template(
        "cases/open.html", case=found, known=found.known, back=url_for("cases.show", case_id=found.id) + "#assessment"
    )


@pages.post("/cases/<case_id>/triage")
@policy(StaffAccess(roles=STAFF))
def ask_again(case_id: str) -> Any:
    found = _case(case_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    _triage([found])
    flash("Asked the network again.", "success")
    return redirect(url_for("cases.show", case_id=found.id))


@pages.post("/cases/<case_id>/assign")
@policy(StaffAccess(roles=STAFF))
def assign_one(case_id: str) -> Any:
    found = _case(case_id)
    form = AssignForm()
    form.to.choices = [("", ""), *((u, u) for u in _staff_usernames())]
    if not form.validate():
        return _show(found, forms={"assign": form}, status=422)
    to = form.to.data or None
    if not _is_supervisor() and to not in (None, _me()):
        raise ProtocolError(
            "an analyst takes cases for herself; a supervisor gives them to others", code="forbidden", status=403
        )
    _book().assign([found], to)
    return _done(found, f"Assigned to {to}." if to else "Back in the queue.")


@pages.post("/cases/<case_id>/assess")
@policy(StaffAccess(roles=STAFF))
def assess(case_id: str) -> Any:
    found = _case(case_id)
    form = _assessment_form(found, request.form)
    if not form.validate():
        return _show(found, forms={"assess": form}, status=422)
    four_eyes = bool(current_app.config["FOUR_EYES_REVIEW"])
    try:
        _book().assess(found, form.recorded(), four_eyes=four_eyes)
    except CaseError as exc:
        form.form_errors.append(exc.message)
        return _show(found, forms={"assess": form}, status=409)
    return _done(found, "Assessment recorded" + (": a supervisor reviews it next." if four_eyes else "."))


@pages.post("/cases/<case_id>/review")
@policy(StaffAccess(roles=("supervisor",)))
def review(case_id: str) -> Any:
    found = _case(case_id)
    form = ReviewForm(prefix="review")
    if not form.validate():
        return _show(found, forms={"review": form}, status=422)
    try:
        _book().review(found, approve=form.decision.data == "approve", note=(form.note.data or "").strip())
    except CaseError as exc:
        form.note.errors = [*form.note.errors, exc.message]
        return _show(found, forms={"review": form}, status=409)
    return _done(found, "Approved." if form.decision.data == "approve" else "Returned to the analyst.")


@pages.post("/cases/<case_id>/trace")
@policy(StaffAccess(roles=STAFF))
def trace_hosting(case_id: str) -> Any:
    found = _case(case_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    result = trace(found.canonical_url, tools(), now=_now())
    _book().record_trace(found, result.to_json())
    if result.error:
        return _done(found, f"Traced: {result.error}.")
    return _done(
        found,
        "Traced: "
        + (
            f"the addresses suggest {result.suggested_country}."
            if result.suggested_country
            else "no country could be suggested."
        ),
    )


@pages.post("/cases/<case_id>/country")
@policy(StaffAccess(roles=STAFF))
def set_country(case_id: str) -> Any:
    found = _case(case_id)
    form = CountryForm(prefix="where")
    valid = form.validate()
    code = _country(form.country.data or "")
    if valid and not code.isalpha():
        form.country.errors = [*form.country.errors, "Two letters, like DE."]
        valid = False
    if not valid:
        return _show(found, forms={"country": form}, status=422)
    try:
        _book().override_country(found, code, (form.reason.data or "").strip())
    except CaseError as exc:
        form.form_errors.append(exc.message)
        return _show(found, forms={"country": form}, status=409)
    return _done(found, f"Hosting country set to {code}.")


@pages.post("/cases/<case_id>/decide")
@policy(StaffAccess(roles=STAFF))
def decide(case_id: str) -> Any:
    found = _case(case_id)
    form = DecideForm()
    if not form.validate():
        abort(400)
    try:
        message = _decide(found, form.decision.data or "")
    except CaseError as exc:
        flash(exc.message, "error")
        return redirect(url_for("cases.show", case_id=found.id))
    return _done(found, message)


def _decide(found: Case, decision: str) -> str:
    """Forward abroad, or keep here; raises CaseError when the case is not ready for it."""
    if found.state != ASSESSED:
        raise CaseError("assess the case (and have it reviewed, where that is on) before deciding")
    if found.legal_status == "not_illegal":
        raise CaseError("a location that is not illegal is closed, not routed")
    country = found.hosting_country
    if not country:
        raise CaseError("trace the hosting first, or set the country by hand")
    if decision == "here":
        if country not in _our_countries():
            raise CaseError(f"{country} is not covered by this hotline: forward it instead")
        _book().hosted_here(found)
        _open_here(found)
        return f"Kept here: hosted in {country}. Send the notice from its page under Received; the police referral too."
    if country in _our_countries():
        raise CaseError(f"{country} is covered by this hotline: keep it here")
    destination, fallback = _destination_for(country)
    report = _forward(found)
    _book().forwarded(found, report_id=report.id, destination=destination, fallback=fallback)
    if fallback:
        return f"Forwarded through the exchange to {destination}, the network's fallback: no member covers {country}."
    return f"Forwarded through the exchange to {destination or 'the hotline that covers ' + country}."


def _assessment_body(found: Case) -> dict[str, Any]:
    recorded = found.assessment or {}
    body = {key: recorded[key] for key in vocabulary.BODY_FIELDS if key in recorded}
    if recorded.get("urgent_reason"):
        body["urgent_reason"] = recorded["urgent_reason"]
    return body


def _open_here(found: Case) -> None:
    from node.received.services import open_here

    open_here(db.session, case=found, member_id=runtime().signer.member_id, body=_assessment_body(found), now=_now())


def _forward(found: Case) -> Report:
    from node.reports.services import confirm_report

    rt = runtime()
    recorded = found.assessment or {}
    body = _assessment_body(found)
    report, _created = confirm_report(
        db.session,
        signer=rt.signer,
        outbox=rt.outbox(),
        exchange_id=current_app.config["EXCHANGE_ID"],
        unverified_input={
            "url": found.url,
            "hosting_country": found.hosting_country,
            "legal_status": found.legal_status,
            "priority": found.priority,
            "content_hashes": recorded.get("content_hashes", []),
            **body,
        },
        now=_now(),
        idempotency_key=f"case:{found.id}",
    )
    AuditLog(db.session, AUDIT).record(
        _actor(),
        "report.confirm",
        "report",
        report.id,
        now=_now(),
        hosting_country=report.hosting_country,
        case=found.id,
    )
    return report


@pages.post("/cases/<case_id>/close")
@policy(StaffAccess(roles=STAFF))
def close(case_id: str) -> Any:
    found = _case(case_id)
    form = CloseForm(prefix="close")
    if not form.validate():
        return _show(found, forms={"close": form}, status=422)
    try:
        _book().close(found, reason=form.reason.data or "", note=(form.note.data or "").strip())
    except CaseError as exc:
        form.reason.errors = [*form.reason.errors, exc.message]
        return _show(found, forms={"close": form}, status=409)
    return _done(found, "Closed. The reporters see “closed”.")


# --- exposure: how much material each analyst opened this week -------------------------------------------


@pages.get("/exposure")
@policy(StaffAccess(roles=("supervisor",)))
def exposure() -> Any:
    now = _now()
    week_start = (now - dt.timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    entry = AUDIT.entry
    rows = db.session.execute(
        select(entry.actor, entry.action, func.count())
        .where(entry.at >= week_start, entry.action.in_(("case.open_url", "received.open_url", "case.assess")))
        .group_by(entry.actor, entry.action)
    ).all()
    people: dict[str, dict[str, int]] = {}
    for actor, action, count in rows:
        who = people.setdefault(actor.removeprefix("account:"), {"opened": 0, "known": 0, "assessed": 0})
        who["opened" if action.endswith("open_url") else "assessed"] += count
    # Openings of material the network already knew: a week's openings at most, read as (actor, detail).
    for actor, detail in db.session.execute(
        select(entry.actor, entry.detail).where(
            entry.at >= week_start, entry.action.in_(("case.open_url", "received.open_url"))
        )
    ):
        if (detail or {}).get("known"):
            people[actor.removeprefix("account:")]["known"] += 1
    total = sum(figures["opened"] for figures in people.values())
    return render_template(
        "cases/exposure.html",
        people=sorted(people.items(), key=lambda item: -item[1]["opened"]),
        week_start=week_start,
        total=total,
    )


# --- the same for scripts (personal API tokens) ---------------------------------------------------------------


def case_view(found: Case) -> dict[str, Any]:
    return {
        "id": found.id,
        "url": found.url,
        "canonical_url": found.canonical_url,
        "url_fingerprint": found.url_fingerprint,
        "state": found.state,
        "priority": found.priority,
        "reporters": found.reporters,
        "first_reported_at": found.first_reported_at.isoformat(),
        "assigned_to": found.assigned_to,
        "known": found.known,
        "triage": found.triage,
        "assessment": found.assessment,
        "legal_status": found.legal_status,
        "trace": found.trace,
        "hosting_country": found.hosting_country,
        "country_source": found.country_source,
        "destination": found.destination,
        "fallback": found.fallback,
        "report_id": found.report_id,
        "closed_reason": found.closed_reason,
    }


API = StaffAccess(roles=STAFF, api=True, tokens=True)


@api.get("")
@policy(API)
def list_cases() -> Any:
    queue = request.args.get("queue", "all")
    query, _ = _filtered(queue if queue in QUEUES else "all")
    number, size = page_number()
    return jsonify(page_json(paginate(db.session, query, number=number, size=size), case_view))


@api.get("/<case_id>")
@policy(API)
def get_case(case_id: str) -> Any:
    return jsonify(case_view(_case(case_id)))


def _json_form(form_class: type[Form]) -> Any:
    from federation.web import json_body

    body = json_body()
    if not isinstance(body, dict):
        raise ProtocolError("the body must be a JSON object", code="invalid_request", status=422)
    pairs: list[tuple[str, str]] = []
    for key, value in body.items():
        if isinstance(value, bool):
            if value:
                pairs.append((key, "y"))
        elif isinstance(value, list):
            pairs.append((key, "\n".join(f"{v['alg']}:{v['value']}" if isinstance(v, dict) else str(v) for v in value)))
        elif value is not None:
            pairs.append((key, str(value)))
    return form_class(formdata=MultiDict(pairs), meta={"csrf": False})


def _form_problem(form: Form) -> ProtocolError:
    errors = {name: list(messages) for name, messages in form.errors.items()}
    first = next(iter(errors.items()), ("", [""]))
    return ProtocolError(
        f"{first[0]}: {first[1][0]}" if first[0] else "invalid input", code="invalid_input", status=422
    )


@api.post("/<case_id>/assess")
@policy(API)
def api_assess(case_id: str) -> Any:
    found = _case(case_id)
    form = _json_form(AssessmentForm)
    if not form.validate():
        raise _form_problem(form)
    _book().assess(found, form.recorded(), four_eyes=bool(current_app.config["FOUR_EYES_REVIEW"]))
    db.session.commit()
    return jsonify(case_view(found))


@api.post("/<case_id>/assign")
@policy(API)
def api_assign(case_id: str) -> Any:
    """``{"to": "ana"}`` gives the case to ana (a supervisor, or ana herself); ``{"to": null}`` puts it back."""
    found = _case(case_id)
    form = _json_form(AssignForm)
    form.to.choices = [("", ""), *((u, u) for u in _staff_usernames())]
    if not form.validate():
        raise _form_problem(form)
    to = form.to.data or None
    if not _is_supervisor() and to not in (None, _me()):
        raise ProtocolError(
            "an analyst takes cases for herself; a supervisor gives them to others", code="forbidden", status=403
        )
    _book().assign([found], to)
    db.session.commit()
    return jsonify(case_view(found))


@api.post("/<case_id>/review")
@policy(StaffAccess(roles=("supervisor",), api=True, tokens=True))
def api_review(case_id: str) -> Any:
    found = _case(case_id)
    form = _json_form(ReviewForm)
    if not form.validate():
        raise _form_problem(form)
    _book().review(found, approve=form.decision.data == "approve", note=(form.note.data or "").strip())
    db.session.commit()
    return jsonify(case_view(found))


@api.post("/<case_id>/trace")
@policy(API)
def api_trace(case_id: str) -> Any:
    found = _case(case_id)
    result = trace(found.canonical_url, tools(), now=_now())
    _book().record_trace(found, result.to_json())
    db.session.commit()
    return jsonify(case_view(found))


@api.post("/<case_id>/country")
@policy(API)
def api_country(case_id: str) -> Any:
    found = _case(case_id)
    form = _json_form(CountryForm)
    if not form.validate() or not _country(form.country.data or "").isalpha():
        raise (
            _form_problem(form)
            if form.errors
            else ProtocolError("country: two letters, like DE", code="invalid_input", status=422)
        )
    _book().override_country(found, _country(form.country.data or ""), (form.reason.data or "").strip())
    db.session.commit()
    return jsonify(case_view(found))


@api.post("/<case_id>/decide")
@policy(API)
def api_decide(case_id: str) -> Any:
    found = _case(case_id)
    form = _json_form(DecideForm)
    if not form.validate():
        raise _form_problem(form)
    _decide(found, form.decision.data or "")
    db.session.commit()
    return jsonify(case_view(found))


@api.post("/<case_id>/close")
@policy(API)
def api_close(case_id: str) -> Any:
    found = _case(case_id)
    form = _json_form(CloseForm)
    if not form.validate():
        raise _form_problem(form)
    _book().close(found, reason=form.reason.data or "", note=(form.note.data or "").strip())
    db.session.commit()
    return jsonify(case_view(found))


@api.post("/<case_id>/triage")
@policy(API)
def api_triage(case_id: str) -> Any:
    found = _case(case_id)
    _triage([found])
    return jsonify(case_view(found))
