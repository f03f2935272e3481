"""Time-based one-time passwords (RFC 6238) as a second factor, with recovery codes.

Secrets are stored encrypted (Fernet, with a key derived from the service's ``SECRET_KEY``), so a copy of
the database alone does not let anyone mint codes. A code is accepted once: the time step it used is
recorded and an equal or earlier step is refused, so a code seen over someone's shoulder cannot be
replayed. Enrolment shows the secret as a QR code drawn by the app itself (inline SVG, nothing fetched).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ISSUER = "Hotline network"
RECOVERY_CODES = 10


class SecretBox:
    """Encrypts second-factor secrets at rest with a key derived from ``SECRET_KEY``."""

    def __init__(self, secret_key: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"hotline totp secrets").derive(
            secret_key.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str | None:
        """The secret, or None if it was sealed under another key (``SECRET_KEY`` changed)."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, *, account: str, service: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=f"{ISSUER} ({service})")


def qr_svg(uri: str) -> str:
    """The provisioning URI as an inline SVG QR code (no script, no external request)."""
    return str(segno.make(uri, error="m").svg_inline(scale=4, dark="#1b1f24", light="#ffffff", title="QR code"))


def accepted_step(secret: str, code: str, *, now: dt.datetime, last_step: int | None) -> int | None:
    """The time step ``code`` is valid for (one step of drift either way), if it is new; else None."""
    code = code.strip().replace(" ", "")
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // totp.interval
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.at(step * totp.interval), code) and (last_step is None or step > last_step):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """Ten codes of 10 characters (about 50 bits each), grouped for reading aloud."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(alphabet) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def recovery_digest(code: str) -> str:
    """Recovery codes are random and long, so a plain SHA-256 is enough to store them (not a password)."""
    normalised = code.strip().lower().replace(" ", "").replace("-", "")
    return hashlib.sha256(normalised.encode()).hexdigest()
