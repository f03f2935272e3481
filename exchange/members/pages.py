"""The secretariat's member pages: the directory with each member's certificates and health, onboarding
from a certificate signing request, suspension, rotation and revocation (admins), and the CRL members
fetch (``GET /v1/crl`` on the network surface)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Optional

from audit.services import entries_about
from exchange.audit.models import AUDIT
from exchange.db import db
from exchange.members.certificates import (
    REASONS,
    CertificateDesk,
    current_crl,
    expiring,
    record_crl_fetch,
)
from exchange.members.models import CURRENT, REVOKED, CrlFetch, Member, MemberCertificate
from exchange.members.services import UnknownMemberError, set_member_status
from exchange.messaging.models import Peer
from federation.errors import ProtocolError
from federation.runtime import runtime
from federation.web import PeerCertificate, current_peer
from people.forms import Form
from people.sessions import StaffAccess, current_principal
from service.policies import policy

SECRETARIAT = StaffAccess(roles=("secretariat-viewer", "secretariat-admin"))
ADMIN = StaffAccess(roles=("secretariat-admin",))
MAX_CSR_CHARS = 8000
ACTIONS = {
    "member.save": "Directory entry saved",
    "member.onboard": "Onboarded; first certificate issued",
    "member.status": "Status changed",
    "member.revoke": "Revoked: left the network",
    "certificate.rotate": "New certificate issued (rotation)",
    "certificate.revoke": "Certificate revoked",
    "certificate.expiry_warning": "Expiry warning mailed",
}

pages = Blueprint("members_console", __name__, template_folder="templates")
network = Blueprint("crl", __name__)


# The network surface ------------------------------------------------------------------------------------


@network.get("/v1/crl")
@policy(PeerCertificate(roles=("member",)))
def crl() -> Any:
    """The network CA's current revocation list (PEM, in JSON with its number); the fetch is recorded."""
    rt = runtime()
    pem, number = current_crl(Path(current_app.config["CRL"]))
    record_crl_fetch(rt.db.session, current_peer().member_id, number, rt.clock())
    rt.db.session.commit()
    return jsonify({"crl_number": number, "crl": pem.decode("ascii")})


# Forms ------------------------------------------------------------------------------------------------------


def _countries(text: str | None) -> list[str]:
    return [part.upper() for part in (text or "").replace(",", " ").split() if part]


class OnboardForm(Form):
    member_id = StringField(
        "Member id", validators=[DataRequired("Enter the member's id, such as hotline-be."), Length(max=64)]
    )
    name = StringField("Name", validators=[DataRequired("Enter the hotline's name."), Length(max=200)])
    countries = StringField("Countries it covers")
    contact_email = StringField(
        "Contact email", validators=[Optional(), Email("Enter an email address, like it-desk@hotline.example.")]
    )
    inbound = SelectField(
        "How it receives",
        choices=[("push", "Push: the exchange sends to its endpoint"), ("pull", "Pull: it collects from its mailbox")],
    )
    endpoint = StringField("Endpoint (push)", validators=[Optional(), Length(max=500)])
    fallback = BooleanField("Fallback: it receives reports for countries nobody covers")
    days = StringField("Certificate valid for (days)", default="365")
    csr = TextAreaField(
        "Certificate signing request",
        validators=[DataRequired("Paste the member's certificate signing request."), Length(max=MAX_CSR_CHARS)],
    )


class RotateForm(Form):
    csr = TextAreaField(
        "New certificate signing request",
        validators=[DataRequired("Paste the new certificate signing request."), Length(max=MAX_CSR_CHARS)],
    )
    days = StringField("Valid for (days)", default="365")


class StatusForm(Form):
    reason = TextAreaField(
        "Reason", validators=[DataRequired("Say why: it is kept in the audit trail."), Length(max=500)]
    )


class RevokeForm(Form):
    reason = SelectField(
        "Reason",
        choices=[(key, label) for key, label in REASONS.items() if key != "superseded"],
        validators=[DataRequired("Choose a reason.")],
    )
    note = TextAreaField(
        "Note", validators=[DataRequired("Say what happened: it is kept in the audit trail."), Length(max=500)]
    )


def _days(field: StringField) -> int | None:
    try:
        days = int((field.data or "").strip())
    except ValueError:
        days = 0
    if not 1 <= days <= 825:
        field.errors = [*field.errors, "Give a number of days from 1 to 825."]
        return None
    return days


def _desk() -> CertificateDesk:
    rt = runtime()
    ca_dir = current_app.config["CA_DIR"]
    return CertificateDesk(
        rt.db.session,
        Path(ca_dir) if ca_dir else None,
        actor=current_principal().actor,
        now=rt.clock(),
        crl_days=int(current_app.config["CRL_DAYS"]),
    )


def _member(member_id: str) -> Member:
    found = db.session.get(Member, member_id) if len(member_id) <= 64 else None
    if found is None:
        raise UnknownMemberError(f"no member {member_id[:64]!r}")
    return found


# Pages ------------------------------------------------------------------------------------------------------


@pages.get("/members")
@policy(SECRETARIAT)
def index() -> Any:
    rt = runtime()
    session = rt.db.session
    now = rt.clock()
    members = list(session.scalars(select(Member).order_by(Member.status != "active", Member.id)))
    certificates: dict[str, MemberCertificate] = {}
    for record in session.scalars(select(MemberCertificate).where(MemberCertificate.state == CURRENT)):
        best = certificates.get(record.member_id)
        if best is None or record.not_after > best.not_after:
            certificates[record.member_id] = record
    peers = {peer.member_id: peer for peer in session.scalars(select(Peer))}
    fetches = {fetch.member_id: fetch for fetch in session.scalars(select(CrlFetch))}
    _, number = current_crl(Path(current_app.config["CRL"]))
    return render_template(
        "members/index.html",
        members=members,
        certificates=certificates,
        peers=peers,
        fetches=fetches,
        crl_number=number,
        soon=expiring(session, now=now, within=dt.timedelta(days=30)),
        now=now,
        can_issue=bool(current_app.config["CA_DIR"]),
    )


@pages.route("/members/new", methods=["GET", "POST"])
@policy(ADMIN)
def onboard() -> Any:
    form = OnboardForm()
    if request.method == "GET":
        form.days.data = str(current_app.config["CERTIFICATE_DAYS"])
    if form.validate_on_submit():
        days = _days(form.days)
        endpoint = (form.endpoint.data or "").strip() or None
        if form.inbound.data == "push" and not endpoint:
            form.endpoint.errors = [*form.endpoint.errors, "A push member needs its https:// endpoint."]
        if form.inbound.data == "pull":
            endpoint = None
        if form.endpoint.errors:  # Say everything that is wrong at once: the request too.
            try:
                _desk().check_request(form.csr.data.strip().encode("utf-8", "replace"))
            except ProtocolError as exc:
                form.csr.errors = [*form.csr.errors, exc.message]
        if days is not None and not form.endpoint.errors:
            try:
                record = _desk().onboard(
                    member_id=form.member_id.data.strip(),
                    name=form.name.data.strip(),
                    countries=_countries(form.countries.data),
                    contact_email=(form.contact_email.data or "").strip() or None,
                    endpoint=endpoint,
                    fallback=bool(form.fallback.data),
                    csr_pem=form.csr.data.strip().encode("utf-8", "replace"),
                    days=days,
                )
            except ProtocolError as exc:
                target = form.csr if exc.code in ("invalid_certificate_request",) else None
                if target is None:
                    text = exc.message
                    target = form.countries if "cover" in text or "countr" in text else form.member_id
                    if "endpoint" in text:
                        target = form.endpoint
                target.errors = [*target.errors, exc.message]
            else:
                db.session.commit()
                flash(
                    f"{record.member_id} onboarded. Give them the certificate below (and the network CA "
                    "certificate): they install it and start their node.",
                    "success",
                )
                return redirect(url_for("members_console.show", member_id=record.member_id))
    status = 422 if request.method == "POST" else 200
    return render_template("members/onboard.html", form=form, can_issue=bool(current_app.config["CA_DIR"])), status


@pages.get("/members/<member_id>")
@policy(SECRETARIAT)
def show(member_id: str) -> Any:
    return _show(_member(member_id))


def _show(member: Member, *, forms: dict[str, Form] | None = None, status: int = 200) -> Any:
    rt = runtime()
    session = rt.db.session
    certificates = list(
        session.scalars(
            select(MemberCertificate)
            .where(MemberCertificate.member_id == member.id)
            .order_by(MemberCertificate.issued_at.desc(), MemberCertificate.serial)
        )
    )
    _, number = current_crl(Path(current_app.config["CRL"]))
    forms = {"status": StatusForm(), "rotate": RotateForm(), "revoke": RevokeForm(), **(forms or {})}
    if not forms["rotate"].days.data:
        forms["rotate"].days.data = str(current_app.config["CERTIFICATE_DAYS"])
    history = [entry for entry in entries_about(session, AUDIT, "member", member.id, limit=50)]
    return render_template(
        "members/show.html",
        member=member,
        certificates=certificates,
        peer=session.get(Peer, member.id),
        fetch=session.get(CrlFetch, member.id),
        crl_number=number,
        forms=forms,
        history=history,
        now=rt.clock(),
        reasons=REASONS,
        actions=ACTIONS,
        can_issue=bool(current_app.config["CA_DIR"]),
        overlap_hours=current_app.config["ROTATION_OVERLAP_HOURS"],
    ), status


@pages.get("/members/<member_id>/certificates/<serial>.pem")
@policy(SECRETARIAT)
def certificate_pem(member_id: str, serial: str) -> Any:
    record = db.session.get(MemberCertificate, serial) if len(serial) <= 48 else None
    if record is None or record.member_id != member_id:
        raise ProtocolError("no such certificate", code="unknown_certificate", status=404)
    return Response(
        record.pem,
        mimetype="application/x-pem-file",
        headers={"Content-Disposition": f'attachment; filename="{member_id}-{serial}.pem"'},
    )


@pages.post("/members/<member_id>/status")
@policy(ADMIN)
def change_status(member_id: str) -> Any:
    member = _member(member_id)
    form = StatusForm()
    wanted = request.form.get("action")
    if wanted not in ("suspend", "reinstate"):
        form.reason.errors = ["Choose suspend or reinstate."]
        return _show(member, forms={"status": form}, status=422)
    if not form.validate_on_submit():
        return _show(member, forms={"status": form}, status=422)
    rt = runtime()
    try:
        set_member_status(
            rt.db.session,
            member.id,
            "suspended" if wanted == "suspend" else "active",
            actor=current_principal().actor,
            now=rt.clock(),
            reason=form.reason.data.strip(),
        )
    except ProtocolError as exc:
        form.reason.errors = [*form.reason.errors, exc.message]
        return _show(member, forms={"status": form}, status=422)
    rt.db.session.commit()
    if wanted == "suspend":
        flash(f"{member.id} suspended: nothing is delivered to it or accepted from it; its messages wait.", "success")
    else:
        flash(f"{member.id} reinstated: what waited for it is delivered now.", "success")
    return redirect(url_for("members_console.show", member_id=member.id))


@pages.post("/members/<member_id>/rotate")
@policy(ADMIN)
def rotate(member_id: str) -> Any:
    member = _member(member_id)
    form = RotateForm()
    if form.validate_on_submit():
        days = _days(form.days)
        if days is not None:
            overlap = dt.timedelta(hours=float(current_app.config["ROTATION_OVERLAP_HOURS"]))
            try:
                record = _desk().rotate(
                    member.id, form.csr.data.strip().encode("utf-8", "replace"), days=days, overlap=overlap
                )
            except ProtocolError as exc:
                form.csr.errors = [*form.csr.errors, exc.message]
            else:
                db.session.commit()
                flash(
                    f"New certificate {record.serial} issued. The old one keeps working for "
                    f"{current_app.config['ROTATION_OVERLAP_HOURS']} hours, then it is revoked as superseded.",
                    "success",
                )
                return redirect(url_for("members_console.show", member_id=member.id))
    return _show(member, forms={"rotate": form}, status=422)


@pages.post("/members/<member_id>/certificates/<serial>/revoke")
@policy(ADMIN)
def revoke_certificate(member_id: str, serial: str) -> Any:
    member = _member(member_id)
    form = RevokeForm()
    if form.validate_on_submit():
        try:
            record = db.session.get(MemberCertificate, serial)
            if record is None or record.member_id != member.id:
                raise ProtocolError("no such certificate", code="unknown_certificate", status=404)
            _desk().revoke(serial, reason=form.reason.data, note=form.note.data.strip())
        except ProtocolError as exc:
            form.note.errors = [*form.note.errors, exc.message]
        else:
            db.session.commit()
            flash(f"Certificate {serial} revoked; the CRL was republished.", "success")
            return redirect(url_for("members_console.show", member_id=member.id))
    return _show(member, forms={"revoke": form}, status=422)


@pages.post("/members/<member_id>/revoke")
@policy(ADMIN)
def revoke_member(member_id: str) -> Any:
    member = _member(member_id)
    form = RevokeForm()
    if form.validate_on_submit():
        try:
            _desk().revoke_member(member.id, reason=form.reason.data, note=form.note.data.strip())
        except ProtocolError as exc:
            form.note.errors = [*form.note.errors, exc.message]
        else:
            db.session.commit()
            flash(f"{member.id} revoked: its certificates are on the CRL and it left the directory.", "success")
            return redirect(url_for("members_console.show", member_id=member.id))
    return _show(member, forms={"revoke": form}, status=422)


__all__ = ["REVOKED", "network", "pages"]
