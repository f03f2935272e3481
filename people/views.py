"""The people pages every console has: sign-in, the account's own settings, and account management.

Views only parse, authorize (their declared policy), call :class:`~people.services.AccountBook` and
render; the request layer commits once per request. A failed sign-in is committed too: the failure count
and its audit entry must survive the refusal.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from sqlalchemy import select

from console import page_number, paginate
from people import totp
from people.forms import CodeForm, ConfirmForm, EnrolForm, NewAccountForm, PasswordForm, RoleForm, SignInForm, TokenForm
from people.services import AccountError, RoleSet, SignInFailedError
from people.sessions import (
    FULL,
    PASSWORD_ONLY,
    StaffAccess,
    begin_session,
    current_principal,
    end_session,
    people,
    session_account,
    setup_due,
    utcnow,
)
from service.database import db_of
from service.policies import Public, policy


def _db() -> Any:
    from flask import current_app

    return db_of(current_app).session


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site (never ``//elsewhere`` or a full URL) may follow sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def _field_error(form: Any, error: AccountError, default: str) -> None:
    field = getattr(form, error.field or default, None)
    if field is not None:
        field.errors = [*field.errors, error.message]
    else:
        form.form_errors.append(error.message)


def people_blueprint(roles: RoleSet, *, home: str) -> Blueprint:
    """The people pages for a service with ``roles``; ``home`` is the endpoint of its start page."""
    bp = Blueprint("people", __name__, template_folder="templates")
    managers = StaffAccess(roles=roles.managers)
    signed_in = StaffAccess()
    during_setup = StaffAccess(setup=True)

    def finish(account: Any, method: str) -> Any:
        book = people().book(_db(), utcnow())
        book.signed_in(account, method=method)
        target = session.get("next")
        begin_session(account, stage=FULL, now=book.now)
        _db().commit()
        return redirect(_safe_next(target) or url_for(home))

    # Signing in and out -------------------------------------------------------------------------

    @bp.route("/sign-in", methods=["GET", "POST"])
    @policy(Public("people sign in here"))
    def sign_in() -> Any:
        current = session_account(_db(), now=utcnow())
        if current is not None and current[1] == FULL:
            return redirect(url_for(home))
        form = SignInForm()
        if form.validate_on_submit():
            book = people().book(_db(), utcnow())
            try:
                account = book.check_password(form.username.data or "", form.password.data or "")
            except SignInFailedError as exc:
                _db().commit()  # The failure counts, and is audited.
                form.form_errors.append(exc.message)
                return render_template("people/sign_in.html", form=form), 401
            target = _safe_next(request.args.get("next"))
            if account.has_second_factor:
                begin_session(account, stage=PASSWORD_ONLY, now=book.now)
                session["next"] = target
                _db().commit()
                return redirect(url_for("people.sign_in_code"))
            session["next"] = target
            return finish(account, "password")
        status = 400 if form.errors else 200
        return render_template("people/sign_in.html", form=form), status

    @bp.route("/sign-in/code", methods=["GET", "POST"])
    @policy(StaffAccess(second_step=True))
    def sign_in_code() -> Any:
        form = CodeForm()
        account = current_principal().account
        if form.validate_on_submit():
            book = people().book(_db(), utcnow())
            try:
                method = book.check_second_factor(account, form.code.data or "")
            except SignInFailedError as exc:
                if book.is_locked(account) or account.disabled_at is not None:
                    end_session(account)
                    _db().commit()
                    flash(exc.message, "error")
                    return redirect(url_for("people.sign_in"))
                _db().commit()
                form.code.errors = [
                    *form.code.errors,
                    "That code is not right, or it was already used. Try the next one.",
                ]
                return render_template("people/code.html", form=form), 401
            return finish(account, method)
        return render_template("people/code.html", form=form), 400 if form.errors else 200

    @bp.post("/sign-out")
    @policy(Public("signing out needs no account; the form still carries a CSRF token"))
    def sign_out() -> Any:
        form = ConfirmForm()
        if form.validate_on_submit():
            current = session_account(_db(), now=utcnow())
            end_session(current[0] if current else None)
            _db().commit()
            flash("You are signed out.", "success")
        return redirect(url_for("people.sign_in"))

    # The account's own settings --------------------------------------------------------------------

    @bp.get("/account")
    @policy(during_setup)
    def settings() -> Any:
        account = current_principal().account
        book = people().book(_db(), utcnow())
        return render_template(
            "people/settings.html",
            account=account,
            tokens=book.tokens_of(account),
            token_form=TokenForm(),
            role_label=roles.label(account.role),
            second_factor_required=account.role in roles.second_factor_required,
            due=setup_due(account, roles),
        )

    @bp.route("/account/password", methods=["GET", "POST"])
    @policy(during_setup)
    def password() -> Any:
        account = current_principal().account
        form = PasswordForm()
        if form.validate_on_submit():
            book = people().book(_db(), utcnow())
            try:
                book.change_password(account, current=form.current.data or "", new=form.new.data or "")
            except AccountError as exc:
                _field_error(form, exc, "new")
                return render_template("people/password.html", form=form, forced=account.must_change_password), 422
            begin_session(account, stage=FULL, now=book.now)  # Other sessions end; this one goes on.
            _db().commit()
            flash("Your password is changed. Other sessions of your account have been signed out.", "success")
            return redirect(
                url_for("people.settings") if setup_due(account, roles) is None else url_for("people.second_factor")
            )
        return render_template(
            "people/password.html", form=form, forced=account.must_change_password
        ), 400 if form.errors else 200

    @bp.route("/account/two-factor", methods=["GET", "POST"])
    @policy(during_setup)
    def second_factor() -> Any:
        account = current_principal().account
        book = people().book(_db(), utcnow())
        if account.must_change_password:
            return redirect(url_for("people.password"))
        form = EnrolForm()
        if account.has_second_factor and request.method == "GET":
            return render_template("people/two_factor.html", enrolled=True, form=None)
        secret = book.pending_secret(account)
        if secret is None:
            secret = book.begin_second_factor(account)
            _db().commit()
        if form.validate_on_submit():
            try:
                codes = book.confirm_second_factor(account, form.code.data or "")
            except AccountError as exc:
                _field_error(form, exc, "code")
            else:
                _db().commit()
                return render_template("people/recovery_codes.html", codes=codes)
        uri = totp.provisioning_uri(secret, account=account.username, service=people().service_name)
        status = 422 if form.errors else 200
        return render_template(
            "people/two_factor.html", enrolled=False, form=form, secret=secret, qr=totp.qr_svg(uri), uri=uri
        ), status

    @bp.post("/account/sign-out-everywhere")
    @policy(during_setup)
    def sign_out_everywhere() -> Any:
        if ConfirmForm().validate_on_submit():
            people().book(_db(), utcnow()).sign_out_everywhere(current_principal().account)
            _db().commit()
            end_session()
            flash("You are signed out on every device.", "success")
        return redirect(url_for("people.sign_in"))

    @bp.post("/account/tokens")
    @policy(signed_in)
    def create_token() -> Any:
        account = current_principal().account
        form = TokenForm()
        book = people().book(_db(), utcnow())
        if form.validate_on_submit():
            try:
                token, plaintext = book.create_token(account, form.name.data or "")
            except AccountError as exc:
                _field_error(form, exc, "name")
            else:
                _db().commit()
                return render_template("people/token_created.html", token=token, plaintext=plaintext)
        return render_template(
            "people/settings.html",
            account=account,
            tokens=book.tokens_of(account),
            token_form=form,
            role_label=roles.label(account.role),
            second_factor_required=account.role in roles.second_factor_required,
            due=setup_due(account, roles),
        ), 422

    @bp.post("/account/tokens/<token_id>/revoke")
    @policy(signed_in)
    def revoke_token(token_id: str) -> Any:
        account = current_principal().account
        token = _db().get(people().token_model, token_id)
        if token is None or token.account_id != account.id:
            abort(404)
        if ConfirmForm().validate_on_submit():
            people().book(_db(), utcnow()).revoke_token(token, by=current_principal().actor)
            _db().commit()
            flash(f"The token “{token.name}” is revoked. Anything still using it is refused from now on.", "success")
        return redirect(url_for("people.settings"))

    # Managing accounts (supervisors, secretariat admins) ------------------------------------------

    @bp.get("/accounts")
    @policy(managers)
    def accounts() -> Any:
        model = people().account_model
        number, size = page_number()
        query = select(model).order_by(model.disabled_at.is_not(None), model.username)
        page = paginate(_db(), query, number=number, size=size)
        return render_template("people/accounts.html", page=page, roles=roles, now=utcnow())

    @bp.route("/accounts/new", methods=["GET", "POST"])
    @policy(managers)
    def new_account() -> Any:
        form = NewAccountForm()
        form.role.choices = [(role, roles.label(role)) for role in roles.roles]
        if form.validate_on_submit():
            book = people().book(_db(), utcnow())
            try:
                account, first_password = book.create(
                    username=form.username.data or "",
                    display_name=form.display_name.data or "",
                    role=form.role.data or "",
                    by=current_principal().actor,
                )
            except AccountError as exc:
                _field_error(form, exc, "username")
                return render_template("people/account_new.html", form=form), 422
            _db().commit()
            return render_template("people/account_created.html", account=account, password=first_password, roles=roles)
        return render_template("people/account_new.html", form=form), 400 if form.errors else 200

    def _account(username: str) -> Any:
        account = people().book(_db(), utcnow()).by_username(username)
        if account is None:
            abort(404)
        return account

    @bp.get("/accounts/<username>")
    @policy(managers)
    def account(username: str) -> Any:
        found = _account(username)
        role_form = RoleForm(role=found.role)
        role_form.role.choices = [(role, roles.label(role)) for role in roles.roles]
        return render_template(
            "people/account.html",
            account=found,
            roles=roles,
            role_form=role_form,
            now=utcnow(),
            locked=people().book(_db(), utcnow()).is_locked(found),
        )

    @bp.post("/accounts/<username>/<action>")
    @policy(managers)
    def account_action(username: str, action: str) -> Any:
        found = _account(username)
        principal = current_principal()
        book = people().book(_db(), utcnow())
        if found.id == principal.account.id and action in ("disable", "role"):
            flash("You cannot disable your own account or change your own role. Ask another supervisor.", "error")
            return redirect(url_for("people.account", username=username))
        form: Any = RoleForm() if action == "role" else ConfirmForm()
        if action == "role":
            form.role.choices = [(role, roles.label(role)) for role in roles.roles]
        if not form.validate_on_submit():
            flash("That could not be done: the form was incomplete. Try again.", "error")
            return redirect(url_for("people.account", username=username))
        message = ""
        if action == "disable":
            book.set_disabled(found, True, by=principal.actor)
            message = f"{found.username} is disabled and signed out everywhere."
        elif action == "enable":
            book.set_disabled(found, False, by=principal.actor)
            message = f"{found.username} can sign in again."
        elif action == "unlock":
            book.unlock(found, by=principal.actor)
            message = f"{found.username} is unlocked."
        elif action == "reset-second-factor":
            book.reset_second_factor(found, by=principal.actor)
            message = f"{found.username}'s second factor is removed; they enrol again at their next sign-in."
        elif action == "role":
            try:
                book.set_role(found, form.role.data, by=principal.actor)
            except AccountError as exc:
                flash(exc.message, "error")
                return redirect(url_for("people.account", username=username))
            message = f"{found.username} is now {roles.label(found.role)}."
        elif action == "reset-password":
            new_password = book.reset_password(found, by=principal.actor)
            _db().commit()
            return render_template(
                "people/account_created.html", account=found, password=new_password, roles=roles, reset=True
            )
        else:
            abort(404)
        _db().commit()
        flash(message, "success")
        return redirect(url_for("people.account", username=username))

    return bp
