"""Referring cases to the police in the console and for scripts, and the referrals handed over."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, flash, jsonify, redirect, render_template, url_for
from sqlalchemy import select
from wtforms import SelectField
from wtforms.validators import DataRequired

from federation.errors import ProtocolError
from federation.runtime import runtime
from federation.web import json_body
from node.db import db
from node.notices.models import AbuseContact
from node.received.services import received_case
from node.referrals.models import Referral
from node.referrals.services import ReferralError, as_csv, claims_of, refer
from people.forms import Form
from people.sessions import StaffAccess, current_principal
from service.clock import now as _now
from service.policies import policy

STAFF = ("analyst", "supervisor")
pages = Blueprint("referrals", __name__, template_folder="templates")
api = Blueprint("referrals_api", __name__, url_prefix="/api/v1")


class ReferralForm(Form):
    police = SelectField("Refer to", validators=[DataRequired("Choose the police contact.")])


def _police() -> list[AbuseContact]:
    countries = set(runtime().signer.identity.countries)
    return [
        c
        for c in db.session.scalars(
            select(AbuseContact)
            .where(AbuseContact.role == "police", AbuseContact.disabled_at.is_(None))
            .order_by(AbuseContact.name)
        )
        if c.country in countries
    ]


def _referral(referral_id: str) -> Referral:
    found = db.session.get(Referral, referral_id) if len(referral_id) <= 36 else None
    if found is None:
        raise ProtocolError("no such referral", code="unknown_referral", status=404)
    return found


def _refer(case_ids: list[str], police: AbuseContact) -> Referral:
    rt = runtime()
    return refer(
        db.session,
        signer=rt.signer,
        outbox=rt.outbox(),
        exchange_id=current_app.config["EXCHANGE_ID"],
        case_ids=case_ids,
        police=police,
        actor=current_principal().actor,
        now=_now(),
    )


@pages.route("/received/<case_id>/referral", methods=["GET", "POST"])
@policy(StaffAccess(roles=STAFF))
def refer_case(case_id: str) -> Any:
    case = received_case(db.session, case_id)
    police = _police()
    form = ReferralForm()
    form.police.choices = [(c.id, f"{c.name} <{c.email}> ({c.country})") for c in police]
    if form.validate_on_submit():
        chosen = next(c for c in police if c.id == form.police.data)
        referral = _refer([case.id], chosen)
        db.session.commit()
        flash(
            "Referred to the police: download the signed file and the CSV below. "
            "The reporting hotlines see “police notified”.",
            "success",
        )
        return redirect(url_for("referrals.show", referral_id=referral.id))
    return render_template("referrals/new.html", case=case, form=form, police=police), 422 if form.errors else 200


@pages.get("/referrals")
@policy(StaffAccess(roles=STAFF))
def index() -> Any:
    found = list(db.session.scalars(select(Referral).order_by(Referral.created_at.desc()).limit(200)))
    return render_template("referrals/index.html", referrals=found)


@pages.get("/referrals/<referral_id>")
@policy(StaffAccess(roles=STAFF))
def show(referral_id: str) -> Any:
    referral = _referral(referral_id)
    return render_template("referrals/show.html", referral=referral, claims=claims_of(referral))


@pages.get("/referrals/<referral_id>.jws")
@policy(StaffAccess(roles=STAFF))
def download_jws(referral_id: str) -> Any:
    referral = _referral(referral_id)
    return Response(
        referral.token,
        mimetype="application/jose",
        headers={"Content-Disposition": f"attachment; filename=referral-{referral.id}.jws"},
    )


@pages.get("/referrals/<referral_id>.csv")
@policy(StaffAccess(roles=STAFF))
def download_csv(referral_id: str) -> Any:
    referral = _referral(referral_id)
    return Response(
        as_csv(referral),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename=referral-{referral.id}.csv"},
    )


API = StaffAccess(roles=STAFF, api=True, tokens=True)


@api.post("/referrals")
@policy(API)
def api_refer() -> Any:
    """``{"case_ids": [...], "police_contact_id": ...}``: one signed referral for the batch."""
    body = json_body()
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("case_ids"), list)
        or not isinstance(body.get("police_contact_id"), str)
    ):
        raise ReferralError("send case_ids (a list of received case ids) and police_contact_id")
    if not all(isinstance(item, str) for item in body["case_ids"]):
        raise ReferralError("case_ids: a list of received case ids")
    police = next((c for c in _police() if c.id == body["police_contact_id"]), None)
    if police is None:
        raise ReferralError("police_contact_id: not a police contact for this hotline's countries")
    referral = _refer(body["case_ids"], police)
    db.session.commit()
    return jsonify(
        {
            "id": referral.id,
            "created_at": referral.created_at.isoformat(),
            "cases": referral.case_ids,
            "token": referral.token,
        }
    ), 201


@api.get("/referrals/<referral_id>")
@policy(API)
def api_referral(referral_id: str) -> Any:
    referral = _referral(referral_id)
    return jsonify(
        {
            "id": referral.id,
            "created_at": referral.created_at.isoformat(),
            "cases": referral.case_ids,
            "token": referral.token,
            "csv": as_csv(referral),
        }
    )
