"""Deciding a notice, its wording and its X-ARF attachment, and sending it.

Deciding writes a pending :class:`~node.notices.models.Notice` in the caller's transaction; the worker's
``notices`` job sends what is due through the configured SMTP server and marks each sent, with its
Message-ID and time, in the transaction that also records "notice sent" on the case (and, for a case
from abroad, signs that status back to the reporting hotlines). The Message-ID is derived from the
notice's id, so the one case a crash can cause (the SMTP server accepted the message, the worker died
before its commit) resends the *same* message, which the provider's mail system can recognise.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import smtplib
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select

from audit.services import AuditLog
from console import defang
from federation.errors import ProtocolError
from federation.signing import short_id
from node.audit.models import AUDIT
from node.notices.models import FAILED, PENDING, SENT, AbuseContact, Notice, NoticeTemplate
from service.database import DBSession
from service.mail import SmtpServer

log = logging.getLogger(__name__)

XARF_VERSION = "4.0.0"
MAX_ATTEMPTS = 12
PLACEHOLDERS = ("url", "reference", "hotline", "first_reported", "legal_status", "media_type")
DEFAULT_TEMPLATES = {
    "en": (
        "Child sexual abuse material on your network: {{ reference }}",
        "Dear abuse team,\n\n"
        "{{ hotline }}, a member of the international network of child sexual abuse hotlines, has assessed\n"
        "material at the following address on your network as child sexual abuse material\n"
        "({{ legal_status }}):\n\n"
        "    {{ url }}\n\n"
        "(The address is written so that it cannot be clicked: replace hxxp with http and [.] with a dot.)\n\n"
        "Please remove it without delay and keep any data your law requires for the police. Do not\n"
        "forward the material itself. First reported: {{ first_reported }}. Our reference: {{ reference }}.\n\n"
        "The attached xarf.json (X-ARF v4, content/csam) carries the same facts for your abuse system.\n"
        "Reply to this message when the content is gone.\n\n"
        "{{ hotline }}\n",
    ),
    "nl": (
        "Materiaal van seksueel kindermisbruik op uw netwerk: {{ reference }}",
        "Beste abuse-team,\n\n"
        "{{ hotline }}, lid van het internationale netwerk van meldpunten voor seksueel kindermisbruik, heeft\n"
        "het materiaal op het volgende adres in uw netwerk beoordeeld als materiaal van seksueel\n"
        "kindermisbruik ({{ legal_status }}):\n\n"
        "    {{ url }}\n\n"
        "(Het adres is zo geschreven dat het niet klikbaar is: vervang hxxp door http en [.] door een punt.)\n\n"
        "Verwijder het zo snel mogelijk en bewaar de gegevens die uw wet voor de politie vraagt. Stuur het\n"
        "materiaal zelf niet door. Eerst gemeld: {{ first_reported }}. Ons kenmerk: {{ reference }}.\n\n"
        "De bijlage xarf.json (X-ARF v4, content/csam) bevat dezelfde gegevens voor uw abuse-systeem.\n"
        "Antwoord op dit bericht zodra de inhoud verwijderd is.\n\n"
        "{{ hotline }}\n",
    ),
    "de": (
        "Darstellungen sexuellen Kindesmissbrauchs in Ihrem Netz: {{ reference }}",
        "Sehr geehrtes Abuse-Team,\n\n"
        "{{ hotline }}, Mitglied des internationalen Netzwerks der Beschwerdestellen gegen Darstellungen\n"
        "sexuellen Kindesmissbrauchs, hat das Material unter folgender Adresse in Ihrem Netz als Darstellung\n"
        "sexuellen Kindesmissbrauchs eingestuft ({{ legal_status }}):\n\n"
        "    {{ url }}\n\n"
        "(Die Adresse ist nicht anklickbar geschrieben: hxxp durch http und [.] durch einen Punkt ersetzen.)\n\n"
        "Bitte entfernen Sie es umgehend und sichern Sie die Daten, die Ihr Recht für die Polizei verlangt.\n"
        "Leiten Sie das Material selbst nicht weiter. Zuerst gemeldet: {{ first_reported }}.\n"
        "Unser Zeichen: {{ reference }}.\n\n"
        "Die Anlage xarf.json (X-ARF v4, content/csam) enthält dieselben Angaben für Ihr Abuse-System.\n"
        "Antworten Sie bitte auf diese Nachricht, sobald der Inhalt entfernt ist.\n\n"
        "{{ hotline }}\n",
    ),
}
REMINDER = {
    "en": ("Reminder", "This is notice number {number} about this address: the material is still online."),
    "nl": ("Herinnering", "Dit is melding nummer {number} over dit adres: het materiaal staat nog online."),
    "de": ("Erinnerung", "Dies ist Hinweis Nummer {number} zu dieser Adresse: das Material ist weiterhin online."),
}
_ENV = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)


class NoticeError(ProtocolError):
    status = 409
    code = "notice"


@dataclass(frozen=True)
class Wording:
    subject: str
    body: str
    custom: bool


def wording(session: DBSession, language: str) -> Wording:
    found = session.get(NoticeTemplate, language)
    if found is not None:
        return Wording(found.subject, found.body, True)
    subject, body = DEFAULT_TEMPLATES.get(language, DEFAULT_TEMPLATES["en"])
    return Wording(subject, body, False)


def render(subject: str, body: str, values: dict[str, str]) -> tuple[str, str]:
    """The subject and text with the placeholders filled in.

    Raises:
        NoticeError: the template does not render (a typo in a placeholder, unbalanced braces, ...).
    """
    try:
        text_subject = _ENV.from_string(subject).render(**values)
        text_body = _ENV.from_string(body).render(**values)
    except TemplateError as exc:
        raise NoticeError(f"the template does not work: {exc}", status=422) from exc
    return " ".join(text_subject.split()), text_body


def check_template(subject: str, body: str) -> None:
    """Raises NoticeError unless the template renders with example values and names the URL."""
    if "{{ url }}" not in body.replace("{{url}}", "{{ url }}"):
        raise NoticeError("the text must contain {{ url }}: the provider needs the address", status=422)
    render(subject, body, {name: f"<{name}>" for name in PLACEHOLDERS})


def save_template(session: DBSession, language: str, subject: str, body: str, *, actor: str, now: dt.datetime) -> None:
    check_template(subject, body)
    found = session.get(NoticeTemplate, language)
    if found is None:
        session.add(NoticeTemplate(language=language, subject=subject, body=body, updated_at=now, updated_by=actor))
    else:
        found.subject, found.body, found.updated_at, found.updated_by = subject, body, now, actor
    AuditLog(session, AUDIT).record(actor, "notice.template", "notice_template", language, now=now)


def details_of(case: Any, **extra: Any) -> dict[str, Any]:
    """What a notice says about a case hosted here besides its URL (a ``received.models.InboundCase``)."""
    return {
        "legal_status": case.legal_status,
        "media_type": (case.details or {}).get("media_type"),
        "content_hashes": case.content_hashes,
        "first_reported": case.confirmed_at.isoformat(),
        "origin": case.origin,
        **extra,
    }


def decide(
    session: DBSession,
    *,
    group_seconds: float = 0,
    case_kind: str,
    case_id: str,
    url: str,
    details: dict[str, Any],
    contact: AbuseContact,
    actor: str,
    now: dt.datetime,
) -> Notice:
    """A notice to ``contact`` about ``url``, pending for the worker, audited."""
    if contact.disabled_at is not None:
        raise NoticeError(f"{contact.name} is no longer in the directory: choose another contact")
    open_notice = session.scalar(
        select(Notice.id).where(
            Notice.case_kind == case_kind,
            Notice.case_id == case_id,
            Notice.contact_id == contact.id,
            Notice.state == PENDING,
        )
    )
    if open_notice is not None:
        raise NoticeError(f"a notice to {contact.name} for this case is already waiting to be sent")
    notice = Notice(
        id=str(uuid.uuid4()),
        case_kind=case_kind,
        case_id=case_id,
        contact_id=contact.id,
        recipient=contact.email,
        language=contact.language,
        url=url,
        details=details,
        state=PENDING,
        created_at=now,
        created_by=actor,
        due_at=now + dt.timedelta(seconds=group_seconds),
        attempts=0,
        followed_up=False,
    )
    session.add(notice)
    AuditLog(session, AUDIT).record(
        actor, "notice.decide", case_kind, case_id, now=now, notice=notice.id, contact=contact.name, to=contact.email
    )
    return notice


def xarf(notice: Notice, *, org: str, contact: str, domain: str, host: str) -> dict[str, Any]:
    """The X-ARF v4 report (category ``content``, type ``csam``) that travels with the notice."""
    details = notice.details
    hashes = {
        item["alg"]: item["value"]
        for item in details.get("content_hashes", [])
        if item["alg"] in ("md5", "sha1", "sha256")
    }
    report: dict[str, Any] = {
        "xarf_version": XARF_VERSION,
        "report_id": notice.id,
        "timestamp": details.get("first_reported") or notice.created_at.isoformat(),
        "reporter": {"org": org, "contact": contact, "domain": domain},
        "sender": {"org": org, "contact": contact, "domain": domain},
        "source_identifier": host,
        "category": "content",
        "type": "csam",
        "url": notice.url,
        "classification": "baseline" if details.get("legal_status") == "baseline" else "A1",
        "detection_method": "manual_review",
        "evidence_source": "user_report",
    }
    if details.get("media_type") in ("image", "video"):
        report["media_type"] = details["media_type"]
    if hashes:
        report["hash_values"] = hashes
    return report


@dataclass(frozen=True)
class Mailer:
    """The SMTP server notices go through (``SMTP_*`` and ``NOTICE_*`` settings)."""

    smtp: SmtpServer
    sender: str
    org: str
    domain: str

    @classmethod
    def from_config(cls, config: Any) -> Mailer | None:
        smtp = SmtpServer.from_config(config)
        if smtp is None:
            return None
        sender = str(config["NOTICE_FROM"])
        return cls(
            smtp=smtp,
            sender=sender,
            org=str(config.get("HOTLINE_NAME") or "Hotline"),
            domain=sender.rpartition("@")[2],
        )

    def message(self, session: DBSession, notices: list[Notice]) -> EmailMessage:
        """One message for one or more notices to the same contact: every address in the text (defanged),
        one X-ARF report per address as an attachment, the first notice's id in the Message-ID."""
        from node.hosting.services import host_of

        first = notices[0]
        text = wording(session, first.language)
        values = {
            "url": "\n    ".join(defang(n.url) for n in notices),
            "reference": ", ".join(f"{self.org} {short_id(n.case_id)}" for n in notices),
            "hotline": self.org,
            "first_reported": min(str(n.details.get("first_reported", "")) for n in notices)[:10],
            "legal_status": ", ".join(
                sorted({str(n.details.get("legal_status", "")).replace("_", " ") for n in notices})
            ),
            "media_type": ", ".join(sorted({str(n.details.get("media_type") or "") for n in notices} - {""})),
        }
        subject, body = render(text.subject, text.body, values)
        if len(notices) > 1:
            subject = f"{subject} (+{len(notices) - 1})"
        number = max(int(n.details.get("number", 1)) for n in notices)
        if number > 1:
            label, line = REMINDER.get(first.language, REMINDER["en"])
            subject = f"{label} {number - 1}: {subject}"
            body = line.format(number=number) + "\n\n" + body
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = first.recipient
        message["Subject"] = subject
        message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
        message["Message-ID"] = f"<notice-{first.id}@{self.domain}>"
        message["X-ARF"] = "yes"
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(body)
        for index, notice in enumerate(notices, start=1):
            report = xarf(
                notice, org=self.org, contact=self.sender, domain=self.domain, host=host_of(notice.url) or notice.url
            )
            message.add_attachment(
                json.dumps(report, indent=2).encode(),
                maintype="application",
                subtype="json",
                filename="xarf.json" if len(notices) == 1 else f"xarf-{index}.json",
            )
        return message

    def send(self, message: EmailMessage) -> None:
        """Hand the message to the SMTP server. Raises smtplib.SMTPException or OSError."""
        self.smtp.send(message)


def due(session: DBSession, now: dt.datetime, *, limit: int = 20, group: int = 1) -> list[list[Notice]]:
    """The notices due now, grouped: with each due notice go the other notices waiting for the same
    address in the same language (up to ``group`` per message), due or not yet."""
    groups: list[list[Notice]] = []
    taken: set[str] = set()
    for notice in session.scalars(
        select(Notice).where(Notice.state == PENDING, Notice.due_at <= now).order_by(Notice.due_at).limit(limit)
    ):
        if notice.id in taken:
            continue
        company = [notice]
        if group > 1:
            company += list(
                session.scalars(
                    select(Notice)
                    .where(
                        Notice.state == PENDING,
                        Notice.recipient == notice.recipient,
                        Notice.language == notice.language,
                        Notice.id != notice.id,
                    )
                    .order_by(Notice.due_at, Notice.id)
                    .limit(group - 1)
                )
            )
        company = [n for n in company if n.id not in taken]
        taken.update(n.id for n in company)
        groups.append(company)
    return groups


def attempt(session: DBSession, mailer: Mailer, notices: list[Notice], *, now: dt.datetime) -> str | None:
    """Send one message for ``notices``; returns its Message-ID when the server accepted it (the caller
    records the rest and commits), or None after recording the failure on each (retried with backoff,
    or failed for good)."""
    for notice in notices:
        notice.attempts += 1
    try:
        message = mailer.message(session, notices)
        mailer.send(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        for notice in notices:
            _failed(
                notice,
                f"the server refused the recipient ({', '.join(map(str, codes))})",
                permanent=all(c >= 500 for c in codes),
                now=now,
            )
        return None
    except (smtplib.SMTPException, OSError, NoticeError) as exc:
        permanent = isinstance(exc, NoticeError) or (
            isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500
        )
        for notice in notices:
            _failed(notice, f"{type(exc).__name__}: {exc}"[:500], permanent=permanent, now=now)
        return None
    for notice in notices:
        notice.state, notice.sent_at, notice.message_id, notice.last_error = SENT, now, message["Message-ID"], None
    return str(message["Message-ID"])


def _failed(notice: Notice, error: str, *, permanent: bool, now: dt.datetime) -> None:
    notice.last_error = error
    if permanent or notice.attempts >= MAX_ATTEMPTS:
        notice.state = FAILED
        log.error("notice %s to %s failed: %s", notice.id, notice.recipient, error)
    else:
        notice.due_at = now + dt.timedelta(seconds=min(3600, 30 * 2 ** (notice.attempts - 1)))
        log.warning("notice %s to %s not sent (attempt %d): %s", notice.id, notice.recipient, notice.attempts, error)
