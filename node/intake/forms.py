"""The public reporting forms: every label, hint and message in the reporter's language."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import EmailField, RadioField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Optional

from node.intake.models import SEEN_ON
from people.forms import Form

DESCRIPTION_LIMIT = 2000

SEEN_ON_LABELS = {
    "website": _l("A website"),
    "social_media": _l("Social media"),
    "chat": _l("A chat or messaging app"),
    "email": _l("An email"),
    "other": _l("Somewhere else"),
}
assert set(SEEN_ON_LABELS) == set(SEEN_ON)


class ReportForm(Form):
    url = StringField(
        _l("Web address (URL)"),
        validators=[DataRequired(_l("Enter the web address of the page, picture or video."))],
    )
    seen_on = RadioField(
        _l("Where did you see it?"),
        choices=list(SEEN_ON_LABELS.items()),
        validators=[DataRequired(_l("Choose where you saw it."))],
    )
    description = TextAreaField(
        _l("What did you see?"),
        validators=[
            Optional(),
            Length(max=DESCRIPTION_LIMIT, message=_l("Keep the description under %(max)d characters.")),
        ],
    )
    contact_name = StringField(
        _l("Your name"),
        validators=[Optional(), Length(max=120, message=_l("Keep your name under %(max)d characters."))],
    )
    contact_email = EmailField(
        _l("Your email address"),
        validators=[
            Optional(),
            Length(max=254, message=_l("Keep the email address under %(max)d characters.")),
            Email(
                message=_l("Enter an email address like name@example.com, or leave it empty."),
                check_deliverability=False,
            ),
        ],
    )
    # The honeypot: hidden from people (and from screen readers), filled in only by scripts.
    nickname_confirm = StringField(_l("Leave this field empty"), validators=[Optional()])


class StatusForm(Form):
    reference = StringField(
        _l("Your reference"),
        validators=[
            DataRequired(_l("Enter the reference you were given when you sent the report.")),
            Length(max=64, message=_l("A reference has 16 letters and numbers, like 7KQ9-XWM2-PHDM-4TC1.")),
        ],
    )
