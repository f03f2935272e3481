"""Members' certificates: onboarding from a certificate signing request, rotation with overlap, revocation,
expiry warnings, and the CRL every member fetches.

The exchange runs the network CA when ``CA_DIR`` is set (``certs.authority``: the CA decides the identity it
binds, whatever the request asked for). Every certificate it issues is recorded here with its validity, so
the secretariat sees what expires when. Rotation issues a new certificate while the old one keeps working
for ``ROTATION_OVERLAP_HOURS``; the worker then revokes the old one as ``superseded``, and documents signed
with it before that moment still verify (docs/protocol.md, section 2). Every revocation republishes the CRL,
which members fetch from ``GET /v1/crl``; the exchange records which member last fetched which CRL number.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from sqlalchemy import select

from audit.services import AuditLog
from certs import authority
from certs.identity import certificate_thumbprint, identity_from_certificate
from exchange.audit.models import AUDIT
from exchange.members.models import (
    ACTIVE,
    CERT_REVOKED,
    CURRENT,
    REVOKED,
    SUPERSEDED,
    CrlFetch,
    Member,
    MemberCertificate,
)
from exchange.members.services import MemberInputError, UnknownMemberError, save_member
from federation.errors import ProtocolError
from service.database import DBSession
from service.mail import SmtpServer

REASONS = {
    "keyCompromise": "The key was compromised (or may have been)",
    "affiliationChanged": "The member changed organisation",
    "cessationOfOperation": "The member left the network",
    "privilegeWithdrawn": "The secretariat withdrew the member's access",
    "superseded": "Replaced by a newer certificate",
    "unspecified": "Another reason (say which in the note)",
}
"""Revocation reasons offered (RFC 5280 reason codes), with what they mean to a person."""


class NoAuthorityError(ProtocolError):
    status = 409
    code = "no_certificate_authority"


class CertificateInputError(ProtocolError):
    status = 422
    code = "invalid_certificate_request"


class UnknownCertificateError(ProtocolError):
    status = 404
    code = "unknown_certificate"


def current_crl(path: Path) -> tuple[bytes, int]:
    """The CRL the exchange publishes (its ``CRL`` file) and its number."""
    pem = path.read_bytes()
    return pem, authority.crl_number(pem)


def record_crl_fetch(session: DBSession, member_id: str, number: int, now: dt.datetime) -> None:
    fetch = session.get(CrlFetch, member_id)
    if fetch is None:
        session.add(CrlFetch(member_id=member_id, crl_number=number, fetched_at=now))
    else:
        fetch.crl_number, fetch.fetched_at = number, now


def _names_for(endpoint: str | None) -> dict[str, tuple[str, ...]]:
    """The endpoint's host as a DNS or IP subject name (for TLS tools that check it; the network itself
    checks the member id)."""
    host = urlsplit(endpoint).hostname if endpoint else None
    if not host:
        return {}
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return {"dns_names": (host,)}
    return {"ip_addresses": (host,)}


@dataclass
class CertificateDesk:
    """Certificate operations for one unit of work (the caller commits), each audited."""

    session: DBSession
    ca_dir: Path | None
    actor: str
    now: dt.datetime
    crl_days: int = 7

    def _ca(self) -> Path:
        if not self.ca_dir:
            raise NoAuthorityError(
                "this exchange has no CA_DIR: issue certificates with `hotline-pki issue`, or set CA_DIR"
            )
        return self.ca_dir

    def _audit(self, action: str, object_id: str, **detail: object) -> None:
        AuditLog(self.session, AUDIT).record(self.actor, action, "member", object_id, now=self.now, **detail)

    # Issuing ---------------------------------------------------------------------------------------

    def onboard(
        self,
        *,
        member_id: str,
        name: str,
        countries: list[str],
        contact_email: str | None,
        endpoint: str | None,
        fallback: bool,
        csr_pem: bytes,
        days: int,
    ) -> MemberCertificate:
        """A new member: its directory entry and its first certificate, issued from its request.

        Raises (before any write): MemberInputError, CertificateInputError, NoAuthorityError.
        """
        ca = self._ca()
        if self.session.get(Member, member_id) is not None:
            raise MemberInputError(f"{member_id} is already a member: issue it a new certificate instead")
        self.check_request(csr_pem)
        member = save_member(
            self.session,
            member_id=member_id,
            name=name,
            countries=countries,
            endpoint=endpoint,
            fallback=fallback,
            now=self.now,
            actor=self.actor,
        )
        member.contact_email = contact_email
        return self._issue(ca, member, csr_pem, days=days, action="member.onboard")

    def rotate(self, member_id: str, csr_pem: bytes, *, days: int, overlap: dt.timedelta) -> MemberCertificate:
        """A new certificate for a member's new key; its current ones keep working for ``overlap``, then
        the worker revokes them as superseded.

        Raises (before any write): UnknownMemberError, MemberInputError, CertificateInputError, NoAuthorityError.
        """
        ca = self._ca()
        member = self._member(member_id)
        if member.status == REVOKED:
            raise MemberInputError(f"{member_id} left the network: onboard it again under a new id")
        self.check_request(csr_pem)
        for older in self._current(member_id):
            if older.supersede_at is None or older.supersede_at > self.now + overlap:
                older.supersede_at = self.now + overlap
        return self._issue(
            ca, member, csr_pem, days=days, action="certificate.rotate", overlap_hours=overlap / dt.timedelta(hours=1)
        )

    def check_request(self, csr_pem: bytes) -> None:
        """What the CA would refuse about a pasted request, said before anything is saved."""
        try:
            authority.request_key(csr_pem)
        except authority.NotARequestError as exc:
            raise CertificateInputError(
                "that is not a certificate signing request: paste the PEM text that starts with "
                "-----BEGIN CERTIFICATE REQUEST----- (made by `hotline-pki new-key`)"
            ) from exc
        except authority.AuthorityError as exc:
            raise CertificateInputError(exc.message) from exc

    def _issue(
        self, ca: Path, member: Member, csr_pem: bytes, *, days: int, action: str, **detail: object
    ) -> MemberCertificate:
        try:
            pem = authority.issue_certificate(
                ca,
                csr_pem,
                member_id=member.id,
                role="member",
                countries=tuple(member.countries),
                days=days,
                now=self.now,
                **_names_for(member.endpoint),  # type: ignore[arg-type]
            )
        except authority.AuthorityError as exc:
            raise CertificateInputError(exc.message) from exc
        record = self.record(member.id, pem)
        self._audit(action, member.id, serial=record.serial, not_after=record.not_after.isoformat(), **detail)
        return record

    def record(self, member_id: str, pem: bytes) -> MemberCertificate:
        """Keep a certificate issued to ``member_id`` (here, or by ``hotline-pki`` and imported)."""
        certificate = x509.load_pem_x509_certificate(pem)
        identity = identity_from_certificate(certificate)
        if identity.member_id != member_id:
            raise CertificateInputError(f"the certificate is for {identity.member_id}, not {member_id}")
        serial = str(certificate.serial_number)
        found = self.session.get(MemberCertificate, serial)
        if found is not None:
            return found
        record = MemberCertificate(
            serial=serial,
            member_id=member_id,
            thumbprint=certificate_thumbprint(certificate),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            issued_at=self.now,
            issued_by=self.actor,
            pem=pem.decode("ascii"),
            state=CURRENT,
            warned=[],
        )
        self.session.add(record)
        self.session.flush()
        return record

    # Revoking --------------------------------------------------------------------------------------

    def revoke(self, serial: str, *, reason: str, note: str | None = None) -> MemberCertificate:
        """Revoke one certificate and republish the CRL.

        Raises (before any write): UnknownCertificateError, CertificateInputError, NoAuthorityError.
        """
        ca = self._ca()
        record = self.session.get(MemberCertificate, serial)
        if record is None:
            raise UnknownCertificateError(f"no certificate {serial} was issued here")
        if reason not in REASONS:
            raise CertificateInputError(f"reason must be one of {', '.join(REASONS)}")
        if record.state != CURRENT:
            raise CertificateInputError(f"certificate {serial} is already {record.state}")
        authority.revoke(ca, int(serial), reason=reason, now=self.now, crl_days=self.crl_days)
        record.state = SUPERSEDED if reason == "superseded" else CERT_REVOKED
        record.revoked_at, record.revocation_reason, record.revocation_note = self.now, reason, note
        self._audit("certificate.revoke", record.member_id, serial=serial, reason=reason, note=note)
        return record

    def revoke_member(self, member_id: str, *, reason: str, note: str) -> Member:
        """A member leaves (or is expelled): every certificate of it is revoked, and it is out of the directory.

        Raises (before any write): UnknownMemberError, CertificateInputError, NoAuthorityError.
        """
        self._ca()
        member = self._member(member_id)
        if not note.strip():
            raise CertificateInputError("say why the member is revoked: the note is kept in the audit trail")
        for record in self._current(member_id):
            self.revoke(record.serial, reason=reason, note=note)
        before, member.status, member.status_reason = member.status, REVOKED, note
        member.is_fallback = False
        self._audit("member.revoke", member_id, before=before, reason=reason, note=note)
        return member

    def supersede_due(self) -> list[MemberCertificate]:
        """Revoke, as superseded, every certificate whose rotation overlap has ended."""
        due = list(
            self.session.scalars(
                select(MemberCertificate).where(
                    MemberCertificate.state == CURRENT,
                    MemberCertificate.supersede_at.is_not(None),
                    MemberCertificate.supersede_at <= self.now,
                )
            )
        )
        for record in due:
            self.revoke(record.serial, reason="superseded", note="rotation overlap ended")
        return due

    def republish_if_due(self) -> int | None:
        """Sign the CRL again when half its validity has passed (a list past its next update makes every
        service fail closed after the grace period); returns the new CRL number, or None."""
        ca = self._ca()
        crl = x509.load_pem_x509_crl((ca / authority.CRL).read_bytes())
        next_update = crl.next_update_utc
        if next_update is not None and next_update - self.now > dt.timedelta(days=self.crl_days / 2):
            return None
        number = authority.crl_number(authority.publish_crl(ca, days=self.crl_days, now=self.now))
        AuditLog(self.session, AUDIT).record(self.actor, "crl.republish", "crl", str(number), now=self.now)
        return number

    # Reading ---------------------------------------------------------------------------------------

    def _member(self, member_id: str) -> Member:
        member = self.session.get(Member, member_id)
        if member is None:
            raise UnknownMemberError(f"no member {member_id!r}")
        return member

    def _current(self, member_id: str) -> list[MemberCertificate]:
        return list(
            self.session.scalars(
                select(MemberCertificate)
                .where(MemberCertificate.member_id == member_id, MemberCertificate.state == CURRENT)
                .order_by(MemberCertificate.not_after)
            )
        )


def expiring(session: DBSession, *, now: dt.datetime, within: dt.timedelta) -> list[MemberCertificate]:
    """Current certificates of members still in the network that expire within ``within`` (soonest first),
    leaving out one already replaced by a newer certificate of the same member."""
    rows = list(
        session.scalars(
            select(MemberCertificate)
            .join(Member, Member.id == MemberCertificate.member_id)
            .where(
                MemberCertificate.state == CURRENT,
                MemberCertificate.supersede_at.is_(None),
                MemberCertificate.not_after <= now + within,
                Member.status != REVOKED,
            )
            .order_by(MemberCertificate.not_after)
        )
    )
    return rows


def warn_expiring(
    session: DBSession, smtp: SmtpServer | None, *, sender: str, days: list[int], now: dt.datetime
) -> int:
    """Mail each member's contact once per threshold (30 and 7 days ahead by default) about a certificate
    about to expire; returns how many warnings went out. Without SMTP the dashboard still shows them."""
    if smtp is None:
        return 0
    sent = 0
    for record in expiring(session, now=now, within=dt.timedelta(days=max(days))):
        member = session.get(Member, record.member_id)
        left = record.not_after - now
        due = [d for d in sorted(days) if left <= dt.timedelta(days=d) and d not in record.warned]
        if member is None or member.status != ACTIVE or not member.contact_email or not due:
            continue
        message = EmailMessage()
        message["From"], message["To"] = sender, member.contact_email
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
        message["Subject"] = (
            f"Your network certificate expires in {max(left.days, 0)} days ({record.not_after:%Y-%m-%d})"
        )
        message.set_content(
            f"The certificate of {member.id} ({member.name}) on the hotline network, serial {record.serial}, "
            f"expires on {record.not_after:%Y-%m-%d %H:%M} UTC.\n\n"
            "Make a new key and request with `hotline-pki new-key`, send the request to the secretariat, and\n"
            "install the certificate you receive: the old one keeps working during the overlap, so nothing\n"
            "is refused while you switch.\n\n-- The network secretariat\n"
        )
        smtp.send(message)
        record.warned = sorted({*record.warned, *due})
        AuditLog(session, AUDIT).record(
            "system", "certificate.expiry_warning", "member", member.id, now=now, serial=record.serial, days=min(due)
        )
        session.commit()
        sent += 1
    return sent
