"""The forms of the people pages (Flask-WTF: CSRF on every form, validation next to each field)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional


class SignInForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired("Enter your username."), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=1024)])


class CodeForm(FlaskForm):
    code = StringField(
        "Code", validators=[DataRequired("Enter the 6-digit code from your app, or a recovery code."), Length(max=32)]
    )


class PasswordForm(FlaskForm):
    current = PasswordField(
        "Current password", validators=[DataRequired("Enter your current password."), Length(max=1024)]
    )
    new = PasswordField("New password", validators=[DataRequired("Choose a new password."), Length(max=1024)])


class EnrolForm(FlaskForm):
    code = StringField(
        "Code from your app", validators=[DataRequired("Enter the 6-digit code your app shows."), Length(max=32)]
    )


class TokenForm(FlaskForm):
    name = StringField(
        "Name", validators=[DataRequired("Name the token, e.g. the script that will use it."), Length(max=80)]
    )


class NewAccountForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired("Choose a username."), Length(max=64)])
    display_name = StringField("Full name", validators=[DataRequired("Enter the person's name."), Length(max=120)])
    role = SelectField("Role", validators=[DataRequired("Choose a role.")])


class RoleForm(FlaskForm):
    role = SelectField("Role", validators=[DataRequired("Choose a role.")])


class ConfirmForm(FlaskForm):
    """A button that changes something: only its CSRF token travels."""


class FilterForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField("Search", validators=[Optional(), Length(max=100)])
