"""Which certificates the network trusts: issued by the network CA, within validity, not revoked.

The trust store holds the network CA certificate and the CA-signed revocation list (CRL). The CRL is
re-read when its file changes, so a revocation published by the secretariat takes effect on a running
service within a second, with no restart. A CRL that is missing, unreadable or not signed by the CA
stops the service from trusting anyone (fail closed); a CRL past its ``next_update`` is still used, with
a warning in the log, because refusing the whole network over a late CRL would be worse than using the
newest list we have.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes

from certs.identity import NetworkIdentity, identity_from_certificate
from federation.errors import ProtocolError

log = logging.getLogger(__name__)


class UntrustedCertificateError(ProtocolError):
    """The certificate was not issued by the network CA."""

    status = 403
    code = "certificate_untrusted"


class ExpiredCertificateError(ProtocolError):
    """The certificate was not valid at the time that matters."""

    status = 403
    code = "certificate_expired"


class RevokedCertificateError(ProtocolError):
    """The certificate is on the network CA's revocation list."""

    status = 403
    code = "certificate_revoked"


class TrustStoreError(ProtocolError):
    """The trust store itself cannot be used (missing or forged CRL, unreadable CA)."""

    status = 503
    code = "trust_store_unavailable"


# Revocations for these reasons say "no longer used from this date", not "never trust": messages signed
# before the revocation date still verify (certificate rotation). Every other reason, key compromise
# above all, means nothing the certificate ever signed can be trusted.
FROM_DATE_REASONS = frozenset(
    {x509.ReasonFlags.superseded, x509.ReasonFlags.cessation_of_operation, x509.ReasonFlags.affiliation_changed}
)


@dataclass(frozen=True)
class _CRLState:
    mtime_ns: int
    revoked: dict[int, dt.datetime | None]
    """Serial → the moment from which it is refused (None: always)."""
    next_update: dt.datetime | None


class TrustStore:
    """The network CA and its revocation list, and the checks that use them."""

    def __init__(self, ca_path: Path, crl_path: Path) -> None:
        try:
            self.ca_certificate = x509.load_pem_x509_certificate(Path(ca_path).read_bytes())
        except (OSError, ValueError) as exc:
            raise TrustStoreError(f"cannot load the network CA certificate {ca_path}: {exc}") from exc
        self.ca_path = Path(ca_path)
        self.crl_path = Path(crl_path)
        self._lock = threading.Lock()
        self._crl: _CRLState | None = None
        self._issued_by_ca: dict[bytes, bool] = {}
        self._identities: dict[bytes, NetworkIdentity] = {}
        self._reload_crl()

    def _reload_crl(self) -> _CRLState:
        """Return the current CRL state, re-reading the file if it changed since last time."""
        try:
            mtime_ns = os.stat(self.crl_path).st_mtime_ns
        except OSError as exc:
            raise TrustStoreError(f"revocation list {self.crl_path} is missing: {exc}") from exc
        state = self._crl
        if state is not None and state.mtime_ns == mtime_ns:
            return state
        with self._lock:
            try:
                crl = x509.load_pem_x509_crl(self.crl_path.read_bytes())
            except (OSError, ValueError) as exc:
                raise TrustStoreError(f"cannot read revocation list {self.crl_path}: {exc}") from exc
            if crl.issuer != self.ca_certificate.subject or not crl.is_signature_valid(
                self.ca_certificate.public_key()  # type: ignore[arg-type]
            ):
                raise TrustStoreError(f"revocation list {self.crl_path} is not signed by the network CA")
            revoked: dict[int, dt.datetime | None] = {}
            for entry in crl:
                try:
                    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
                except x509.ExtensionNotFound:
                    reason = x509.ReasonFlags.unspecified
                revoked[entry.serial_number] = entry.revocation_date_utc if reason in FROM_DATE_REASONS else None
            state = _CRLState(mtime_ns=mtime_ns, revoked=revoked, next_update=crl.next_update_utc)
            if state.next_update is not None and state.next_update < dt.datetime.now(dt.UTC):
                log.warning("revocation list %s is past its next update (%s)", self.crl_path, state.next_update)
            self._crl = state
            return state

    def is_revoked(self, serial: int, *, at: dt.datetime) -> bool:
        """Whether the certificate ``serial`` is refused for something done at ``at``."""
        revoked = self._reload_crl().revoked
        if serial not in revoked:
            return False
        since = revoked[serial]
        return since is None or at >= since

    def verify_certificate(self, certificate: x509.Certificate, *, at: dt.datetime) -> NetworkIdentity:
        """Check a member or exchange certificate and return the identity it asserts.

        Args:
            certificate: the unverified certificate.
            at: the moment it must have been valid (now for a live connection; a message's issued-at
                for a signature, so that messages signed before a rotation still verify).

        Raises:
            UntrustedCertificateError, ExpiredCertificateError, RevokedCertificateError,
            CertificateIdentityError.
        """
        # 1. Issued by the network CA: the CA's signature over the certificate verifies.
        fingerprint = certificate.fingerprint(hashes.SHA256())
        issued = self._issued_by_ca.get(fingerprint)
        if issued is None:
            try:
                certificate.verify_directly_issued_by(self.ca_certificate)
                issued = True
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                issued = False
            if len(self._issued_by_ca) > 4096:
                self._issued_by_ca.clear()
            self._issued_by_ca[fingerprint] = issued
        if not issued:
            raise UntrustedCertificateError("certificate was not issued by the network CA")
        # 2. Within its validity window at the moment that matters.
        if not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
            raise ExpiredCertificateError(
                f"certificate valid {certificate.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} to "
                f"{certificate.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}, not at {at:%Y-%m-%dT%H:%M:%SZ}"
            )
        # 3. Not revoked.
        if self.is_revoked(certificate.serial_number, at=at):
            raise RevokedCertificateError(f"certificate {certificate.serial_number:x} has been revoked")
        # 4. Carries a well-formed network identity (parsed once per certificate).
        identity = self._identities.get(fingerprint)
        if identity is None:
            identity = identity_from_certificate(certificate)
            if len(self._identities) > 4096:
                self._identities.clear()
            self._identities[fingerprint] = identity
        return identity
