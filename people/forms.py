"""The forms of the people pages (Flask-WTF: CSRF on every form, validation next to each field)."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Form(FlaskForm):
    """Every console form: one value per field, and no control characters (a NUL byte, say) in any text.

    Browsers never send either (a multiple choice aside); a field sent twice or a NUL byte is refused next
    to the field instead of being half-understood (or, for the NUL byte, refused by PostgreSQL with a 500).
    """

    def validate(self, extra_validators: Any = None) -> bool:
        valid: bool = super().validate(extra_validators)
        for field in self:
            raw = getattr(field, "raw_data", None) or []
            if len(raw) > 1 and not isinstance(field, SelectMultipleField):
                field.errors = [*field.errors, str(_l("Send this field once."))]
                valid = False
            elif any(isinstance(value, str) and _CONTROL.search(value) for value in raw):
                field.errors = [*field.errors, str(_l("Remove the control characters from this field."))]
                valid = False
        return valid


class SignInForm(Form):
    username = StringField("Username", validators=[DataRequired("Enter your username."), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=1024)])


class CodeForm(Form):
    code = StringField(
        "Code", validators=[DataRequired("Enter the 6-digit code from your app, or a recovery code."), Length(max=32)]
    )


class PasswordForm(Form):
    current = PasswordField(
        "Current password", validators=[DataRequired("Enter your current password."), Length(max=1024)]
    )
    new = PasswordField("New password", validators=[DataRequired("Choose a new password."), Length(max=1024)])


class EnrolForm(Form):
    code = StringField(
        "Code from your app", validators=[DataRequired("Enter the 6-digit code your app shows."), Length(max=32)]
    )


class TokenForm(Form):
    name = StringField(
        "Name", validators=[DataRequired("Name the token, e.g. the script that will use it."), Length(max=80)]
    )


class NewAccountForm(Form):
    username = StringField("Username", validators=[DataRequired("Choose a username."), Length(max=64)])
    display_name = StringField("Full name", validators=[DataRequired("Enter the person's name."), Length(max=120)])
    role = SelectField("Role", validators=[DataRequired("Choose a role.")])


class RoleForm(Form):
    role = SelectField("Role", validators=[DataRequired("Choose a role.")])


class ConfirmForm(Form):
    """A button that changes something: only its CSRF token travels."""


class FilterForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField("Search", validators=[Optional(), Length(max=100)])
