"""The routing page: where each country's reports go now, the fallback, suspended members, and the
secretariat's overrides (admins set and remove them, with a reason; each change is audited)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from sqlalchemy import select
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from exchange.db import db
from exchange.members.models import ACTIVE, SUSPENDED, Member
from exchange.routing.services import OverrideInputError, clear_override, routing_table, set_override
from federation.runtime import runtime
from people.forms import Form
from people.sessions import StaffAccess, current_principal
from service.policies import policy

SECRETARIAT = StaffAccess(roles=("secretariat-viewer", "secretariat-admin"))
ADMIN = StaffAccess(roles=("secretariat-admin",))

pages = Blueprint("routing", __name__, template_folder="templates")


class OverrideForm(Form):
    country = StringField("Country", validators=[DataRequired("Enter the two-letter country code."), Length(max=2)])
    member = SelectField("Send its reports to", validators=[DataRequired("Choose the member.")])
    reason = TextAreaField(
        "Reason", validators=[DataRequired("Say why: it is shown here and audited."), Length(max=500)]
    )
    expires = DateField("Until", validators=[Optional()])


class RemoveForm(Form):
    reason = StringField("Reason", validators=[DataRequired("Say why the override ends."), Length(max=500)])


def _form() -> OverrideForm:
    form = OverrideForm()
    members = db.session.scalars(select(Member).where(Member.status == ACTIVE).order_by(Member.id))
    form.member.choices = [("", "Choose a member")] + [(m.id, f"{m.id} ({m.name})") for m in members]
    return form


@pages.get("/routing")
@policy(SECRETARIAT)
def index() -> Any:
    return _show(_form())


def _show(form: OverrideForm, status: int = 200) -> Any:
    rt = runtime()
    routes, fallback, expired = routing_table(rt.db.session, now=rt.clock())
    suspended = list(rt.db.session.scalars(select(Member).where(Member.status == SUSPENDED).order_by(Member.id)))
    where = {route.country: route for route in routes}
    return render_template(
        "routing/index.html",
        routes=routes,
        fallback=fallback,
        expired=expired,
        suspended=suspended,
        where=where,
        form=form,
        remove=RemoveForm(),
    ), status


@pages.post("/routing/overrides")
@policy(ADMIN)
def add_override() -> Any:
    form = _form()
    if not form.validate_on_submit():
        return _show(form, 422)
    rt = runtime()
    expires = None
    if form.expires.data:
        expires = dt.datetime.combine(form.expires.data, dt.time(), tzinfo=dt.UTC)
    try:
        row = set_override(
            rt.db.session,
            country=form.country.data or "",
            member_id=form.member.data or "",
            reason=form.reason.data or "",
            expires_at=expires,
            actor=current_principal().actor,
            now=rt.clock(),
        )
    except OverrideInputError as exc:
        target = form.expires if "expiry" in exc.message else form.country if "country" in exc.message else form.member
        if "reason" in exc.message or "say why" in exc.message:
            target = form.reason
        target.errors = [*target.errors, exc.message]
        return _show(form, 422)
    rt.db.session.commit()
    until = f" until {row.expires_at:%Y-%m-%d}" if row.expires_at else ""
    flash(
        f"Reports of content hosted in {row.country} go to {row.member_id}{until}. Members see it in the directory.",
        "success",
    )
    return redirect(url_for("routing.index"))


@pages.post("/routing/overrides/<country>/remove")
@policy(ADMIN)
def remove_override(country: str) -> Any:
    form = RemoveForm()
    rt = runtime()
    if not form.validate_on_submit():
        flash("Say why the override ends.", "error")
        return redirect(url_for("routing.index") + "#overrides")
    try:
        clear_override(
            rt.db.session,
            country=country[:2],
            reason=form.reason.data or "",
            actor=current_principal().actor,
            now=rt.clock(),
        )
    except OverrideInputError as exc:
        flash(exc.message, "error")
        return redirect(url_for("routing.index") + "#overrides")
    rt.db.session.commit()
    flash(f"The override of {country[:2].upper()} is removed: the directory routes its reports again.", "success")
    return redirect(url_for("routing.index"))
