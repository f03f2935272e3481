"""What an analyst records about a location: the fields hotlines exchange (ICCAM's vocabulary).

The values are the wire values of the report body (``schemas/report.schema.json``), so an assessment
travels abroad as recorded and is shown at the destination with the same labels. ``not_illegal`` is a
local finding only: such a case is closed here and never forwarded.
"""

from __future__ import annotations

import re
from typing import Any

from wtforms import BooleanField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from people.forms import Form

LEGAL_STATUSES = {
    "baseline": "Baseline: illegal everywhere (INTERPOL criteria)",
    "nationally_illegal": "Nationally illegal: illegal here, not necessarily everywhere",
    "not_illegal": "Not illegal",
}
MEDIA_TYPES = {"image": "Images", "video": "Video", "other": "Other (text, archive, ...)"}
AGE_GROUPS = {
    "infant_toddler": "Infant or toddler",
    "prepubescent": "Pre-pubescent",
    "pubescent": "Pubescent",
    "unknown": "Not determined",
}
GENDERS = {"female": "Female", "male": "Male", "both": "Both", "unknown": "Not determined"}
SITE_TYPES = {
    "website": "Website",
    "image_host": "Image host",
    "file_host": "File host",
    "forum": "Forum",
    "image_store": "Image store",
    "banner_site": "Banner site",
    "link_site": "Link site",
    "social_networking_site": "Social networking site",
    "blog": "Blog",
    "search_provider": "Search provider",
    "redirector": "Redirector",
    "web_archive": "Web archive",
}
PAYMENT_METHODS = {
    "card": "Payment card",
    "cryptocurrency": "Cryptocurrency",
    "bank_transfer": "Bank transfer",
    "payment_service": "Online payment service",
    "other": "Other",
    "unknown": "Not determined",
}
HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64}
LABELS = {
    "legal_status": LEGAL_STATUSES,
    "media_type": MEDIA_TYPES,
    "age_group": AGE_GROUPS,
    "gender": GENDERS,
    "site_type": SITE_TYPES,
    "payment_method": PAYMENT_METHODS,
}
BODY_FIELDS = ("media_type", "site_type", "age_group", "gender", "commercial", "payment_method", "virtual", "notes")
"""What travels in a forwarded report's body (besides the URL)."""


def label(field: str, value: Any) -> str:
    """How a recorded value reads on a page (here and at the destination)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return LABELS.get(field, {}).get(str(value), str(value))


def parse_hashes(text: str) -> list[dict[str, str]]:
    """Content hashes from a text area: one per line, ``alg:hex`` or a bare hex value of an unambiguous
    length (32 is MD5, 40 is SHA-1; 64 needs ``sha256:`` or ``pdq:``).

    Raises:
        ValueError: naming the line that is not a hash.
    """
    found: list[dict[str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        alg, sep, value = line.partition(":")
        if not sep:
            value = alg
            alg = {32: "md5", 40: "sha1"}.get(len(value), "")
            if not alg:
                raise ValueError(f"line {number}: write sha256:… or pdq:… before a 64-character value")
        alg, value = alg.strip().lower(), value.strip().lower()
        if alg not in HASH_LENGTHS:
            raise ValueError(f"line {number}: {alg[:10]!r} is not md5, sha1, sha256 or pdq")
        if not re.fullmatch(rf"[0-9a-f]{{{HASH_LENGTHS[alg]}}}", value):
            raise ValueError(f"line {number}: a {alg} hash is {HASH_LENGTHS[alg]} hexadecimal characters")
        entry = {"alg": alg, "value": value}
        if entry not in found:
            found.append(entry)
    if len(found) > 50:
        raise ValueError("at most 50 hashes")
    return found


def _choices(values: dict[str, str], blank: str | None = None) -> list[tuple[str, str]]:
    return ([("", blank)] if blank else []) + list(values.items())


class AssessmentForm(Form):
    legal_status = RadioField(
        "Legal status", choices=_choices(LEGAL_STATUSES), validators=[DataRequired("Choose the legal status.")]
    )
    media_type = SelectField("Media", choices=_choices(MEDIA_TYPES, "Choose"), validators=[Optional()])
    age_group = SelectField("Age group", choices=_choices(AGE_GROUPS, "Choose"), validators=[Optional()])
    gender = SelectField("Gender", choices=_choices(GENDERS, "Choose"), validators=[Optional()])
    site_type = SelectField("Site type", choices=_choices(SITE_TYPES, "Choose"), validators=[Optional()])
    commercial = BooleanField("Commercial: the material is sold or used to sell")
    payment_method = SelectField("Payment method", choices=_choices(PAYMENT_METHODS, "Choose"), validators=[Optional()])
    virtual = BooleanField("Virtual or AI-generated")
    urgent = BooleanField("Urgent: a child may be in immediate danger")
    urgent_reason = TextAreaField(
        # No Optional(): it would stop the chain before the check that an urgent case says why.
        "Why it is urgent",
        validators=[Length(max=500, message="Keep the reason under 500 characters.")],
    )
    content_hashes = TextAreaField(
        "Content hashes", validators=[Optional(), Length(max=8000, message="At most 50 hashes.")]
    )
    notes = TextAreaField(
        "Notes for the hotline that handles it",
        validators=[Optional(), Length(max=4000, message="Keep the notes under 4,000 characters.")],
    )

    def validate_urgent_reason(self, field: StringField) -> None:
        if self.urgent.data and not (field.data or "").strip():
            raise ValidationError("Say why it is urgent: the receiving hotline and the police act on it.")

    def validate_content_hashes(self, field: TextAreaField) -> None:
        try:
            parse_hashes(field.data or "")
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    def validate_payment_method(self, field: SelectField) -> None:
        if field.data and not self.commercial.data:
            raise ValidationError("A payment method is for commercial material: tick “Commercial” or leave it empty.")

    def recorded(self) -> dict[str, Any]:
        """The assessment as stored and forwarded (empty choices left out)."""
        values: dict[str, Any] = {"legal_status": self.legal_status.data}
        for name in ("media_type", "age_group", "gender", "site_type", "payment_method"):
            value = getattr(self, name).data
            if value:
                values[name] = value
        values["commercial"] = bool(self.commercial.data)
        values["virtual"] = bool(self.virtual.data)
        values["priority"] = "urgent" if self.urgent.data else "normal"
        if self.urgent.data:
            values["urgent_reason"] = (self.urgent_reason.data or "").strip()
        values["content_hashes"] = parse_hashes(self.content_hashes.data or "")
        notes = (self.notes.data or "").strip()
        if notes:
            values["notes"] = notes
        return values
