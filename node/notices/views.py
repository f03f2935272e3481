"""The abuse-contact directory, the notice templates, and sending a notice for a case, in the console and
for scripts. Supervisors keep the directory and the wording; analysts choose whom to notify."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import or_, select
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired

from console import page_json, page_number, paginate
from federation.errors import ProtocolError
from federation.web import json_body
from node.db import db
from node.hosting.services import tools
from node.notices.contacts import LANGUAGES, ContactBook, ContactError, export_csv
from node.notices.models import ROLES, AbuseContact, Notice
from node.notices.services import DEFAULT_TEMPLATES, NoticeError, decide, details_of, render, save_template, wording
from node.received.models import InboundCase
from node.received.services import hosting_trace, received_case
from people.forms import ConfirmForm, Form
from people.sessions import StaffAccess, current_principal
from service.clock import now as _now
from service.policies import policy

STAFF = ("analyst", "supervisor")
SUPERVISOR = StaffAccess(roles=("supervisor",))
pages = Blueprint("notices", __name__, template_folder="templates")
api = Blueprint("notices_api", __name__, url_prefix="/api/v1")
API = StaffAccess(roles=STAFF, api=True, tokens=True)
MAX_CSV_BYTES = 2 * 1024 * 1024


class ContactForm(Form):
    name = StringField("Name", validators=[DataRequired("Enter the provider's name.")])
    role = SelectField("Role", choices=list(ROLES.items()))
    email = StringField("Abuse email address", validators=[DataRequired("Enter the abuse desk's email address.")])
    language = SelectField("Language of its notices", choices=[(code, code) for code in LANGUAGES])
    domains = StringField("Domains")
    networks = StringField("Networks")
    asns = StringField("AS numbers")
    country = StringField("Country (police contacts)")
    renotice_hours = StringField("Hours between notices", default="24")
    note = TextAreaField("Note (staff only)")

    def data_for_book(self) -> dict[str, Any]:
        return {name: field.data for name, field in self._fields.items() if name != "csrf_token"}

    def show_errors(self, errors: dict[str, str]) -> None:
        for name, message in errors.items():
            field = self._fields.get(name)
            if field is not None:
                field.errors = [*field.errors, message]
            else:
                self.form_errors.append(message)


class TemplateForm(Form):
    subject = StringField("Subject", validators=[DataRequired("Enter a subject.")])
    body = TextAreaField("Text", validators=[DataRequired("Enter the text.")])


class NoticeForm(Form):
    contact = SelectField("Send the notice to", validators=[DataRequired("Choose whom to notify.")])


def _book() -> ContactBook:
    return ContactBook(db.session, actor=current_principal().actor, now=_now())


def _contact(contact_id: str) -> AbuseContact:
    found = db.session.get(AbuseContact, contact_id) if len(contact_id) <= 36 else None
    if found is None:
        raise ProtocolError("no such contact", code="unknown_contact", status=404)
    return found


def _received(case_id: str) -> InboundCase:
    return received_case(db.session, case_id)


def contact_view(contact: AbuseContact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "name": contact.name,
        "role": contact.role,
        "email": contact.email,
        "language": contact.language,
        "domains": contact.domains,
        "networks": contact.networks,
        "asns": contact.asns,
        "country": contact.country,
        "renotice_hours": contact.renotice_hours,
        "note": contact.note,
        "disabled": contact.disabled_at is not None,
    }


def notice_view(notice: Notice) -> dict[str, Any]:
    return {
        "id": notice.id,
        "case_kind": notice.case_kind,
        "case_id": notice.case_id,
        "contact_id": notice.contact_id,
        "to": notice.recipient,
        "language": notice.language,
        "state": notice.state,
        "created_at": notice.created_at.isoformat(),
        "created_by": notice.created_by,
        "attempts": notice.attempts,
        "last_error": notice.last_error,
        "sent_at": notice.sent_at.isoformat() if notice.sent_at else None,
        "message_id": notice.message_id,
    }


def notices_for(case_kind: str, case_id: str) -> list[Notice]:
    return list(
        db.session.scalars(
            select(Notice).where(Notice.case_kind == case_kind, Notice.case_id == case_id).order_by(Notice.created_at)
        )
    )


# --- the directory ------------------------------------------------------------------------------------------


@pages.get("/contacts")
@policy(StaffAccess(roles=STAFF))
def contacts() -> Any:
    q = request.args.get("q", "").strip()[:200]
    query = select(AbuseContact).where(AbuseContact.disabled_at.is_(None)).order_by(AbuseContact.name)
    if q:
        query = query.where(or_(AbuseContact.name.contains(q), AbuseContact.email.contains(q)))
    number, size = page_number()
    page = paginate(db.session, query, number=number, size=size)
    return render_template(
        "notices/contacts.html", page=page, q=q, roles=ROLES, supervisor=current_principal().role == "supervisor"
    )


@pages.route("/contacts/new", methods=["GET", "POST"])
@policy(SUPERVISOR)
def new_contact() -> Any:
    form = ContactForm()
    if form.validate_on_submit():
        try:
            contact = _book().create(form.data_for_book())
        except ContactError as exc:
            form.show_errors(exc.errors)
        else:
            db.session.commit()
            flash(f"{contact.name} added to the directory.", "success")
            return redirect(url_for("notices.contacts"))
    return render_template(
        "notices/contact.html", form=form, contact=None
    ), 422 if form.errors or form.form_errors else 200


@pages.route("/contacts/<contact_id>", methods=["GET", "POST"])
@policy(SUPERVISOR)
def edit_contact(contact_id: str) -> Any:
    contact = _contact(contact_id)
    form = ContactForm(
        obj=None,
        data={
            **contact_view(contact),
            "domains": " ".join(contact.domains),
            "networks": " ".join(contact.networks),
            "asns": " ".join(f"AS{n}" for n in contact.asns),
            "renotice_hours": str(contact.renotice_hours),
            "country": contact.country or "",
            "note": contact.note or "",
        },
    )
    if form.validate_on_submit():
        if request.form.get("action") == "disable":
            _book().disable(contact)
            db.session.commit()
            flash(f"{contact.name} removed from the directory (its past notices stay on their cases).", "success")
            return redirect(url_for("notices.contacts"))
        try:
            _book().update(contact, form.data_for_book())
        except ContactError as exc:
            form.show_errors(exc.errors)
        else:
            db.session.commit()
            flash(f"{contact.name} saved.", "success")
            return redirect(url_for("notices.contacts"))
    return render_template(
        "notices/contact.html", form=form, contact=contact
    ), 422 if form.errors or form.form_errors else 200


@pages.get("/contacts/export.csv")
@policy(SUPERVISOR)
def export_contacts() -> Any:
    text = export_csv(_book().active())
    return Response(
        text, mimetype="text/csv", headers={"Content-Disposition": "attachment; filename=abuse-contacts.csv"}
    )


@pages.route("/contacts/import", methods=["GET", "POST"])
@policy(SUPERVISOR)
def import_contacts() -> Any:
    errors: dict[str, str] = {}
    if request.method == "POST":
        if not ConfirmForm().validate_on_submit():
            abort(400)
        upload = request.files.get("file")
        raw = upload.read(MAX_CSV_BYTES + 1) if upload else b""
        if not raw:
            errors = {"file": "Choose a CSV file."}
        elif len(raw) > MAX_CSV_BYTES:
            errors = {"file": "The file is larger than 2 MB."}
        else:
            try:
                created, updated = _book().import_csv(raw.decode("utf-8-sig"))
            except UnicodeDecodeError:
                errors = {"file": "The file is not UTF-8 text."}
            except ContactError as exc:
                db.session.rollback()
                errors = exc.errors
            else:
                db.session.commit()
                flash(f"Imported: {created} new, {updated} updated.", "success")
                return redirect(url_for("notices.contacts"))
    return render_template("notices/import.html", errors=errors, confirm=ConfirmForm()), 422 if errors else 200


# --- the wording ---------------------------------------------------------------------------------------------


@pages.route("/notices/templates/<language>", methods=["GET", "POST"])
@policy(SUPERVISOR)
def edit_template(language: str) -> Any:
    if language not in LANGUAGES:
        abort(404)
    current = wording(db.session, language)
    form = TemplateForm(data={"subject": current.subject, "body": current.body})
    if form.validate_on_submit():
        try:
            save_template(
                db.session,
                language,
                form.subject.data or "",
                form.body.data or "",
                actor=current_principal().actor,
                now=_now(),
            )
        except NoticeError as exc:
            form.body.errors = [*form.body.errors, exc.message]
        else:
            db.session.commit()
            flash(f"The {language} notice is saved; the next notices use it.", "success")
            return redirect(url_for("notices.edit_template", language=language))
    preview = None
    if not form.errors:
        example = {
            "url": "hxxp://images[.]example/gallery/4411",
            "reference": "Hotline 1a2b3c4d",
            "hotline": "Hotline",
            "first_reported": "2026-11-30",
            "legal_status": "baseline",
            "media_type": "image",
        }
        try:
            preview = render(form.subject.data or "", form.body.data or "", example)
        except NoticeError as exc:
            form.body.errors = [exc.message]
    return render_template(
        "notices/template.html",
        form=form,
        language=language,
        languages=LANGUAGES,
        custom=current.custom,
        preview=preview,
        defaults=DEFAULT_TEMPLATES,
    ), 422 if form.errors else 200


# --- a notice for a case received from abroad ------------------------------------------------------------------


def _suggestions(case: InboundCase, *, again: bool = False) -> tuple[list[Any], Any]:
    """The contacts suggested for the case's host, and the trace they come from (kept on the case, traced
    again when it is a day old or when asked)."""
    traced, new = hosting_trace(case, tools(), now=_now(), again=again)
    if new:
        db.session.commit()
    return _book().suggest_for(traced), traced


@pages.route("/received/<case_id>/notice", methods=["GET", "POST"])
@policy(StaffAccess(roles=STAFF))
def notice_for_received(case_id: str) -> Any:
    case = _received(case_id)
    suggestions, traced = _suggestions(case)
    everyone = _book().active()
    form = NoticeForm()
    suggested = [s.contact.id for s in suggestions]
    form.contact.choices = [("", "Choose a contact")] + [
        (c.id, f"{c.name} <{c.email}> ({ROLES[c.role].lower()}){' · suggested' if c.id in suggested else ''}")
        for c in sorted(
            everyone, key=lambda c: (c.id not in suggested, suggested.index(c.id) if c.id in suggested else 0, c.name)
        )
    ]
    if request.method == "GET" and suggestions:
        form.contact.data = suggestions[0].contact.id
    if form.validate_on_submit():
        try:
            decide(
                db.session,
                group_seconds=float(current_app.config["NOTICE_GROUP_SECONDS"]),
                case_kind="received",
                case_id=case.id,
                url=case.url,
                details=details_of(case),
                contact=_contact(form.contact.data or ""),
                actor=current_principal().actor,
                now=_now(),
            )
        except NoticeError as exc:
            form.contact.errors = [*form.contact.errors, exc.message]
        else:
            db.session.commit()
            flash(
                "Notice queued: the worker sends it within seconds, and records “notice sent” on the case.", "success"
            )
            return redirect(url_for("received.show", case_id=case.id))
    return render_template(
        "notices/notice.html",
        case=case,
        form=form,
        suggestions=suggestions,
        traced=traced,
        confirm=ConfirmForm(),
        notices=notices_for("received", case.id),
    ), 422 if form.errors else 200


@pages.post("/received/<case_id>/notice/trace")
@policy(StaffAccess(roles=STAFF))
def trace_received(case_id: str) -> Any:
    """Trace the host again (it may have moved since the kept trace), then back to the notice page."""
    case = _received(case_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    suggestions, traced = _suggestions(case, again=True)
    if traced.error:
        flash(f"Traced again: {traced.error}.", "warning")
    else:
        found = ", ".join(s.contact.name for s in suggestions[:3]) or "no contact in the directory"
        count = len(traced.addresses)
        flash(f"Traced again: {count} address{'' if count == 1 else 'es'}; suggested: {found}.", "success")
    return redirect(url_for("notices.notice_for_received", case_id=case.id))


# --- past the deadline --------------------------------------------------------------------------------------------


@pages.get("/notices/overdue")
@policy(StaffAccess(roles=STAFF))
def overdue() -> Any:
    from node.notices.ladder import past_deadline

    hours = float(current_app.config["NOTICE_DEADLINE_HOURS"])
    upstream_hours = float(current_app.config["NOTICE_UPSTREAM_DEADLINE_HOURS"])
    found = past_deadline(db.session, now=_now(), hours=hours, upstream_hours=upstream_hours)
    return render_template("notices/overdue.html", overdue=found, hours=hours, upstream_hours=upstream_hours)


# --- the same for scripts -------------------------------------------------------------------------------------------


@api.get("/contacts")
@policy(API)
def api_contacts() -> Any:
    query = select(AbuseContact).where(AbuseContact.disabled_at.is_(None)).order_by(AbuseContact.name)
    number, size = page_number()
    return jsonify(page_json(paginate(db.session, query, number=number, size=size), contact_view))


@api.post("/contacts")
@policy(StaffAccess(roles=("supervisor",), api=True, tokens=True))
def api_create_contact() -> Any:
    body = json_body()
    if not isinstance(body, dict):
        raise ProtocolError("the body must be a JSON object", code="invalid_request", status=422)
    contact = _book().create(body)
    db.session.commit()
    return jsonify(contact_view(contact)), 201


@api.get("/contacts/<contact_id>")
@policy(API)
def api_contact(contact_id: str) -> Any:
    return jsonify(contact_view(_contact(contact_id)))


@api.get("/received/<case_id>/notices")
@policy(API)
def api_notices(case_id: str) -> Any:
    case = _received(case_id)
    return jsonify({"items": [notice_view(n) for n in notices_for("received", case.id)]})


@api.post("/received/<case_id>/notices")
@policy(API)
def api_send_notice(case_id: str) -> Any:
    """``{"contact_id": …}``: a notice to that contact about this case, queued for the worker."""
    case = _received(case_id)
    body = json_body()
    contact_id = body.get("contact_id") if isinstance(body, dict) else None
    if not isinstance(contact_id, str):
        raise ProtocolError("contact_id: the id of a contact in the directory", code="invalid_input", status=422)
    notice = decide(
        db.session,
        group_seconds=float(current_app.config["NOTICE_GROUP_SECONDS"]),
        case_kind="received",
        case_id=case.id,
        url=case.url,
        details=details_of(case),
        contact=_contact(contact_id),
        actor=current_principal().actor,
        now=_now(),
    )
    db.session.commit()
    return jsonify(notice_view(notice)), 201


@api.get("/received/<case_id>/contacts")
@policy(API)
def api_suggest(case_id: str) -> Any:
    """The contacts suggested for the case's host, likeliest first, with why."""
    case = _received(case_id)
    suggestions, traced = _suggestions(case)
    return jsonify(
        {
            "host": traced.host,
            "addresses": [a.__dict__ for a in traced.addresses],
            "items": [{**contact_view(s.contact), "why": s.why} for s in suggestions],
        }
    )
