"""Partners in the console (supervisors register, suspend and re-key them) and the token endpoint.

The console pages live on the console surface; ``/oauth/token`` lives on the public surface, beside the
API it opens. A secret is shown once, on the page that answers the request that made it, and never
again: only its hash is kept.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from wtforms import EmailField, SelectMultipleField, StringField, widgets
from wtforms.validators import DataRequired, Length

from audit.services import entries_about
from console import page_number, paginate
from federation.ratelimit import RateLimitedError
from node.audit.models import AUDIT
from node.db import db
from node.intake.models import Submission
from node.partners.models import SCOPES, Partner
from node.partners.oauth import authorization_server
from node.partners.services import PartnerBook, PartnerInputError
from people.forms import ConfirmForm, Form
from people.sessions import StaffAccess, current_principal
from service.clock import now as _now
from service.policies import Public, policy
from service.throttle import AnonymousThrottle

pages = Blueprint("partners", __name__, template_folder="templates")
oauth = Blueprint("oauth", __name__)
SUPERVISORS = StaffAccess(roles=("supervisor",))


class ScopesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class PartnerForm(Form):
    name = StringField(
        "Name",
        validators=[DataRequired("Enter the partner's name."), Length(max=120, message="At most 120 characters.")],
    )
    contact = EmailField(
        "Technical contact",
        validators=[DataRequired("Enter an email address for the partner's technical contact."), Length(max=254)],
    )
    scopes = ScopesField("What it may do", choices=list(SCOPES.items()), default=list(SCOPES))


class ScopesForm(Form):
    scopes = ScopesField("What it may do", choices=list(SCOPES.items()))


def _partner(partner_id: str) -> Partner:
    found = db.session.get(Partner, partner_id)
    if found is None:
        abort(404)
    return found


@pages.get("/partners")
@policy(SUPERVISORS)
def index() -> Any:
    number, size = page_number()
    page = paginate(db.session, select(Partner).order_by(Partner.name, Partner.id), number=number, size=size)
    counts = dict(
        db.session.execute(
            select(Submission.partner_id, func.count())
            .where(Submission.partner_id.is_not(None))
            .group_by(Submission.partner_id)
        ).all()
    )
    return render_template("partners/index.html", page=page, counts=counts, scopes=SCOPES)


@pages.route("/partners/new", methods=["GET", "POST"])
@policy(SUPERVISORS)
def new() -> Any:
    form = PartnerForm()
    if form.validate_on_submit():
        try:
            partner, secret = PartnerBook(db.session).register(
                name=form.name.data or "",
                contact=form.contact.data or "",
                scopes=list(form.scopes.data or []),
                by=current_principal().actor,
                now=_now(),
            )
        except PartnerInputError as exc:
            getattr(form, exc.field).errors.append(exc.message)
        else:
            db.session.commit()
            return render_template("partners/secret.html", partner=partner, secret=secret, fresh=True)
    return render_template("partners/new.html", form=form), 422 if request.method == "POST" else 200


@pages.get("/partners/<partner_id>")
@policy(SUPERVISORS)
def show(partner_id: str) -> Any:
    partner = _partner(partner_id)
    return _show(partner, ScopesForm(scopes=partner.scope_list))


def _show(partner: Partner, form: ScopesForm, status: int = 200) -> Any:
    reports = db.session.scalar(select(func.count()).select_from(Submission).where(Submission.partner_id == partner.id))
    calls = entries_about(db.session, AUDIT, "partner", partner.id, limit=20)
    return (
        render_template(
            "partners/show.html",
            partner=partner,
            reports=reports,
            calls=calls,
            form=form,
            confirm=ConfirmForm(),
            scopes=SCOPES,
        ),
        status,
    )


def _confirmed() -> None:
    if not ConfirmForm().validate_on_submit():
        abort(400)


@pages.post("/partners/<partner_id>/suspend")
@policy(SUPERVISORS)
def suspend(partner_id: str) -> Any:
    partner = _partner(partner_id)
    _confirmed()
    PartnerBook(db.session).suspend(partner, by=current_principal().actor, now=_now())
    db.session.commit()
    flash(f"{partner.name} is suspended: its tokens stopped working and it cannot get new ones.", "success")
    return redirect(url_for("partners.show", partner_id=partner.id))


@pages.post("/partners/<partner_id>/reinstate")
@policy(SUPERVISORS)
def reinstate(partner_id: str) -> Any:
    partner = _partner(partner_id)
    _confirmed()
    PartnerBook(db.session).reinstate(partner, by=current_principal().actor, now=_now())
    db.session.commit()
    flash(f"{partner.name} is active again; it needs a new token.", "success")
    return redirect(url_for("partners.show", partner_id=partner.id))


@pages.post("/partners/<partner_id>/secret")
@policy(SUPERVISORS)
def new_secret(partner_id: str) -> Any:
    partner = _partner(partner_id)
    _confirmed()
    secret = PartnerBook(db.session).new_secret(partner, by=current_principal().actor, now=_now())
    db.session.commit()
    return render_template("partners/secret.html", partner=partner, secret=secret, fresh=False)


@pages.post("/partners/<partner_id>/scopes")
@policy(SUPERVISORS)
def scopes(partner_id: str) -> Any:
    partner = _partner(partner_id)
    form = ScopesForm()
    if not form.validate():
        return _show(partner, form, 422)
    try:
        PartnerBook(db.session).set_scopes(
            partner, list(form.scopes.data or []), by=current_principal().actor, now=_now()
        )
    except PartnerInputError as exc:
        form.scopes.errors = [*form.scopes.errors, exc.message]
        return _show(partner, form, 422)
    db.session.commit()
    flash("Scopes saved. The partner's tokens were revoked; it needs a new one.", "success")
    return redirect(url_for("partners.show", partner_id=partner.id))


# --- the token endpoint (public surface) ----------------------------------------------------------------


@oauth.post("/oauth/token")
@policy(Public("partners authenticate here with their client credentials"))
def token() -> Any:
    throttle: AnonymousThrottle = current_app.extensions["intake_throttle"]
    throttle.hit("token", request.remote_addr or "")
    response = authorization_server().create_token_response()
    db.session.commit()  # The token, and the audit entries of refusals.
    return response


def rate_limited(error: RateLimitedError) -> Any:
    from console import problem

    response = problem(429, error.code, error.message)
    response.headers["Retry-After"] = str(error.retry_after)
    return response
