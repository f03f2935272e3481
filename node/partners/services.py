"""Registering partners, their secrets and their tokens (every change in the audit trail).

A partner authenticates with OAuth2 client credentials (RFC 6749 section 4.4): a client id and a secret,
exchanged at ``/oauth/token`` for a bearer token that expires (``PARTNER_TOKEN_SECONDS``). The secret is
shown once, when a supervisor registers the partner or sets a new secret, and only its SHA-256 is kept;
so are the tokens'. Suspending a partner revokes its tokens in the same transaction, and the API checks
the partner's state on every call besides, so a suspension takes effect on the next request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import uuid

from sqlalchemy import select, update

from audit.services import AuditLog
from federation.errors import ProtocolError
from node.audit.models import AUDIT
from node.partners.models import ACTIVE, SCOPES, SUSPENDED, Partner, PartnerToken
from service.database import DBSession

CLIENT_ID_PREFIX = "hpc_"
SECRET_PREFIX = "hps_"  # noqa: S105 - a prefix that marks our secrets, not a secret.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")


class PartnerInputError(ProtocolError):
    status = 422
    code = "invalid_partner"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def actor_of(partner: Partner) -> str:
    """How a partner appears in the audit trail."""
    return f"partner:{partner.client_id}"


class PartnerBook:
    """The partners of one node; every change is recorded in its audit trail in the same transaction."""

    def __init__(self, session: DBSession) -> None:
        self.session = session
        self.audit = AuditLog(session, AUDIT)

    def register(self, *, name: str, contact: str, scopes: list[str], by: str, now: dt.datetime) -> tuple[Partner, str]:
        """A new partner; returns it and its client secret (shown once)."""
        name, contact = name.strip(), contact.strip()
        if not 1 <= len(name) <= 120:
            raise PartnerInputError("Enter the partner's name (at most 120 characters).", field="name")
        if not _EMAIL.match(contact) or len(contact) > 254:
            raise PartnerInputError("Enter an email address for the partner's technical contact.", field="contact")
        unknown = [scope for scope in scopes if scope not in SCOPES]
        if unknown or not scopes:
            raise PartnerInputError("Choose at least one of the scopes offered.", field="scopes")
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        partner = Partner(
            id=str(uuid.uuid4()),
            client_id=CLIENT_ID_PREFIX + secrets.token_hex(12),
            secret_hash=digest(secret),
            name=name,
            contact=contact,
            scopes=" ".join(sorted(set(scopes))),
            status=ACTIVE,
            created_at=now,
            created_by=by,
            secret_set_at=now,
        )
        self.session.add(partner)
        self.audit.record(
            by,
            "partner.register",
            "partner",
            partner.id,
            now=now,
            name=name,
            client_id=partner.client_id,
            scopes=scopes,
        )
        self.session.flush()
        return partner, secret

    def new_secret(self, partner: Partner, *, by: str, now: dt.datetime) -> str:
        """Replace the partner's secret (the old one stops working at once, and so do its tokens)."""
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        partner.secret_hash = digest(secret)
        partner.secret_set_at = now
        self._revoke_tokens(partner, now)
        self.audit.record(by, "partner.new_secret", "partner", partner.id, now=now)
        return secret

    def suspend(self, partner: Partner, *, by: str, now: dt.datetime) -> None:
        if partner.status == SUSPENDED:
            raise ProtocolError("this partner is already suspended", code="already_suspended", status=409)
        partner.status = SUSPENDED
        partner.suspended_at = now
        self._revoke_tokens(partner, now)
        self.audit.record(by, "partner.suspend", "partner", partner.id, now=now)

    def reinstate(self, partner: Partner, *, by: str, now: dt.datetime) -> None:
        if partner.status == ACTIVE:
            raise ProtocolError("this partner is active", code="already_active", status=409)
        partner.status = ACTIVE
        partner.suspended_at = None
        self.audit.record(by, "partner.reinstate", "partner", partner.id, now=now)

    def set_scopes(self, partner: Partner, scopes: list[str], *, by: str, now: dt.datetime) -> None:
        unknown = [scope for scope in scopes if scope not in SCOPES]
        if unknown or not scopes:
            raise PartnerInputError("Choose at least one of the scopes offered.", field="scopes")
        before = partner.scope_list
        partner.scopes = " ".join(sorted(set(scopes)))
        # A token carries the scopes it was issued with; new scopes need a new token, fewer take effect now.
        self._revoke_tokens(partner, now)
        self.audit.record(by, "partner.scopes", "partner", partner.id, now=now, before=before, after=partner.scope_list)

    def _revoke_tokens(self, partner: Partner, now: dt.datetime) -> None:
        self.session.execute(
            update(PartnerToken)
            .where(PartnerToken.partner_id == partner.id, PartnerToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    def authenticate(self, client_id: str, secret: str) -> Partner | None:
        """The partner with these credentials, or None (unknown, wrong secret; suspension is checked later)."""
        partner: Partner | None = self.session.scalar(select(Partner).where(Partner.client_id == client_id))
        if partner is None:
            hmac.compare_digest(digest(secret), digest(""))  # Same work either way.
            return None
        if not hmac.compare_digest(partner.secret_hash, digest(secret)):
            return None
        return partner

    def token(self, presented: str, *, now: dt.datetime) -> tuple[PartnerToken, Partner] | None:
        """The live token and its partner for a presented bearer token, or None."""
        found = self.session.execute(
            select(PartnerToken, Partner)
            .join(Partner, Partner.id == PartnerToken.partner_id)
            .where(PartnerToken.token_hash == digest(presented))
        ).first()
        if found is None:
            return None
        token, partner = found
        return token, partner

    def issue(self, partner: Partner, *, access_token: str, scope: str, expires_in: int, now: dt.datetime) -> None:
        self.session.add(
            PartnerToken(
                partner_id=partner.id,
                token_hash=digest(access_token),
                scope=scope,
                issued_at=now,
                expires_at=now + dt.timedelta(seconds=expires_in),
            )
        )
        partner.last_used_at = now
        self.audit.record(actor_of(partner), "partner.token", "partner", partner.id, now=now, scope=scope)

    def prune_tokens(self, *, now: dt.datetime) -> int:
        """Delete tokens that expired more than a day ago (their hashes are useless by then)."""
        old = list(
            self.session.scalars(select(PartnerToken).where(PartnerToken.expires_at < now - dt.timedelta(days=1)))
        )
        for token in old:
            self.session.delete(token)
        return len(old)
