"""Which certificates the network trusts: issued by the network CA, within validity, not revoked.

The trust store holds the network CA certificate and the CA-signed revocation list (CRL). How it treats
the CRL, in order:

1. The CRL file is re-read when it changes, so a revocation published by the secretariat takes effect on
   a running service within a second, with no restart.
2. A CRL that is missing, unreadable or not signed by the CA stops the service from trusting anyone
   (fail closed): :class:`TrustStoreError`, an internal error that is logged and never shown to a peer.
3. Every CRL carries a CRL number (RFC 5280 5.2.3) and the store keeps the highest number it accepted
   (in memory, and through ``high_water`` across restarts). A list with a lower number is an old list
   replayed, perhaps to un-revoke a key: it is refused, and the newer list already loaded stays in force.
4. A CRL past its ``nextUpdate`` is still used for a grace period (``crl_grace``), with a loud warning on
   every use, because refusing the whole network over a late CRL would be worse than using the newest
   list we have; after the grace period the store fails closed.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from certs.identity import CertificateIdentityError, NetworkIdentity, identity_from_certificate, prime_order_key
from federation.errors import InternalError, ProtocolError

log = logging.getLogger(__name__)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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


class TrustStoreError(InternalError):
    """The trust store itself cannot be used (missing, forged, replayed or long-expired CRL; unreadable CA)."""

    public_code = "trust_store_unavailable"
    public_message = "this service cannot check certificates now (its revocation list is unusable); retry later"


class CRLHighWater(Protocol):
    """Where the highest CRL number a service accepted is kept across restarts."""

    def load(self) -> int: ...

    def store(self, number: int) -> None: ...


# Revocations for these reasons say "no longer used from this date", not "never trust": messages signed
# before the revocation date still verify (certificate rotation). Every other reason, key compromise
# above all, means nothing the certificate ever signed can be trusted.
FROM_DATE_REASONS = frozenset(
    {x509.ReasonFlags.superseded, x509.ReasonFlags.cessation_of_operation, x509.ReasonFlags.affiliation_changed}
)


@dataclass(frozen=True)
class _CRLState:
    mtime_ns: int
    number: int
    revoked: dict[int, dt.datetime | None]
    """Serial → the moment from which it is refused (None: always)."""
    next_update: dt.datetime | None


@dataclass(frozen=True)
class _Certificate:
    """What never changes about one certificate, read from it once (see :meth:`TrustStore.verify_certificate`)."""

    issued_by_ca: bool
    not_before: dt.datetime
    not_after: dt.datetime
    serial: int
    identity: NetworkIdentity | None
    identity_problem: str | None
    """Why the certificate carries no well-formed identity (None when it does)."""


class TrustStore:
    """The network CA and its revocation list, and the checks that use them."""

    CERTIFICATES_KEPT = 4096
    """Certificates whose fixed facts are kept (a network has a few per member; the cache is emptied when
    full, so a peer sending many forged ones costs CPU, not memory)."""

    WARNING_INTERVAL_SECONDS = 60.0

    def __init__(
        self,
        ca_path: Path,
        crl_path: Path,
        *,
        crl_grace: dt.timedelta = dt.timedelta(days=3),
        high_water: CRLHighWater | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        try:
            self.ca_certificate = x509.load_pem_x509_certificate(Path(ca_path).read_bytes())
        except (OSError, ValueError) as exc:
            raise TrustStoreError(f"cannot load the network CA certificate {ca_path}: {exc}") from exc
        self.ca_path = Path(ca_path)
        self.crl_path = Path(crl_path)
        self.crl_grace = crl_grace
        self.clock = clock
        self._high_water = high_water
        self._lock = threading.Lock()
        self._crl: _CRLState | None = None
        self._highest: int | None = None
        self._refused_mtime_ns: int | None = None
        self._warned_at = 0.0
        self._certificates: dict[x509.Certificate, _Certificate] = {}
        self._held = threading.local()
        self._reload_crl()

    @property
    def crl_number(self) -> int | None:
        """The number of the CRL in force (None before one is loaded)."""
        return self._crl.number if self._crl is not None else None

    def _highest_accepted(self) -> int:
        if self._highest is None:
            stored = 0
            if self._high_water is not None:
                try:
                    stored = self._high_water.load()
                except Exception as exc:  # A database not yet migrated has no record; this process keeps one.
                    log.debug("could not read the highest accepted CRL number (%s); starting from 0", exc)
            self._highest = stored
        return self._highest

    @contextmanager
    def one_crl(self) -> Iterator[None]:
        """Check everything inside (in this thread) against one revocation list: the one in force on entry.

        A transaction's signature and its documents' are then judged by the same list, never by one that
        changes half way through, and the list's file is looked at once per transaction instead of once
        per check (a check took 4-6 µs with the file's ``stat``, 0.3 without, and a document from its own
        author is checked twice: issue 11). A list replaced meanwhile applies from the next transaction on.
        """
        if getattr(self._held, "state", None) is not None:  # Already inside one: that list stays.
            yield
            return
        self._held.state = self._reload_crl()
        try:
            yield
        finally:
            self._held.state = None

    def _reload_crl(self) -> _CRLState:
        """Return the CRL state in force, re-reading the file if it changed, and check it is still usable."""
        held: _CRLState | None = getattr(self._held, "state", None)
        if held is not None:
            return held
        try:
            mtime_ns = os.stat(self.crl_path).st_mtime_ns
        except OSError as exc:
            raise TrustStoreError(f"revocation list {self.crl_path} is missing: {exc}") from exc
        state = self._crl
        if state is None or (state.mtime_ns != mtime_ns and self._refused_mtime_ns != mtime_ns):
            with self._lock:
                state = self._read_crl(mtime_ns)
        if state is None:
            raise TrustStoreError(f"revocation list {self.crl_path} is older than one already accepted")
        self._check_fresh(state)
        return state

    def _read_crl(self, mtime_ns: int) -> _CRLState | None:
        """Load the CRL file; return the state in force afterwards (None when nothing usable is loaded)."""
        if self._crl is not None and self._crl.mtime_ns == mtime_ns:
            return self._crl  # Another thread loaded it while we waited for the lock.
        try:
            crl = x509.load_pem_x509_crl(self.crl_path.read_bytes())
        except (OSError, ValueError, x509.InvalidVersion) as exc:
            raise TrustStoreError(f"cannot read revocation list {self.crl_path}: {exc}") from exc
        if crl.issuer != self.ca_certificate.subject or not crl.is_signature_valid(
            self.ca_certificate.public_key()  # type: ignore[arg-type]
        ):
            raise TrustStoreError(f"revocation list {self.crl_path} is not signed by the network CA")
        try:
            number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        except x509.ExtensionNotFound as exc:
            raise TrustStoreError(f"revocation list {self.crl_path} has no CRL number") from exc
        highest = self._highest_accepted()
        if number < highest:
            # 3. An older list than one we accepted: keep the newer one in force; fail closed without one.
            self._refused_mtime_ns = mtime_ns
            log.error(
                "refusing revocation list %s: CRL number %d is lower than %d, already accepted (a replayed list?)",
                self.crl_path,
                number,
                highest,
            )
            return self._crl
        revoked: dict[int, dt.datetime | None] = {}
        for entry in crl:
            try:
                reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
            except x509.ExtensionNotFound:
                reason = x509.ReasonFlags.unspecified
            revoked[entry.serial_number] = entry.revocation_date_utc if reason in FROM_DATE_REASONS else None
        state = _CRLState(mtime_ns=mtime_ns, number=number, revoked=revoked, next_update=crl.next_update_utc)
        if number > highest:
            self._highest = number
            if self._high_water is not None:
                try:
                    self._high_water.store(number)
                except Exception as exc:
                    log.debug("could not record CRL number %d as accepted: %s", number, type(exc).__name__)
        self._refused_mtime_ns = None
        self._crl = state
        return state

    def _check_fresh(self, state: _CRLState) -> None:
        """4. Past nextUpdate: warn loudly during the grace period, then fail closed."""
        if state.next_update is None:
            return
        now = self.clock()
        if now <= state.next_update:
            return
        if now > state.next_update + self.crl_grace:
            raise TrustStoreError(
                f"revocation list {self.crl_path} (number {state.number}) expired at "
                f"{state.next_update:%Y-%m-%dT%H:%M:%SZ} and its grace period of {self.crl_grace} has passed: "
                "fetch a current CRL"
            )
        if time.monotonic() - self._warned_at >= self.WARNING_INTERVAL_SECONDS:
            self._warned_at = time.monotonic()
            log.error(
                "revocation list %s (number %d) is past its next update %s; it stops being trusted at %s",
                self.crl_path,
                state.number,
                state.next_update.isoformat(),
                (state.next_update + self.crl_grace).isoformat(),
            )

    def is_revoked(self, serial: int, *, at: dt.datetime) -> bool:
        """Whether the certificate ``serial`` is refused for something done at ``at``."""
        revoked = self._reload_crl().revoked
        if serial not in revoked:
            return False
        since = revoked[serial]
        return since is None or at >= since

    def verify_certificate(
        self, certificate: x509.Certificate, *, at: dt.datetime, also_at: dt.datetime | None = None
    ) -> NetworkIdentity:
        """Check a member or exchange certificate and return the identity it asserts.

        Args:
            certificate: the unverified certificate.
            at: the moment it must have been valid (now for a live connection; a message's issued-at
                for a signature, so that messages signed before a rotation still verify).
            also_at: a second moment it must be valid and unrevoked at: the moment of receipt, for a
                document at its first hop, so that a key revoked as superseded cannot go on signing by
                back-dating its messages.

        Raises:
            UntrustedCertificateError, ExpiredCertificateError, RevokedCertificateError,
            CertificateIdentityError.
        """
        facts = self._certificates.get(certificate)
        if facts is None:
            facts = self._read(certificate)
        # 1. Issued by the network CA: the CA's signature over the certificate verifies.
        if not facts.issued_by_ca:
            raise UntrustedCertificateError("certificate was not issued by the network CA")
        for moment in (at,) if also_at is None else (at, also_at):
            # 2. Within its validity window at the moment that matters.
            if not facts.not_before <= moment <= facts.not_after:
                raise ExpiredCertificateError(
                    f"certificate valid {facts.not_before:%Y-%m-%dT%H:%M:%SZ} to "
                    f"{facts.not_after:%Y-%m-%dT%H:%M:%SZ}, not at {moment:%Y-%m-%dT%H:%M:%SZ}"
                )
            # 3. Not revoked (the CRL in force now: it is never cached).
            if self.is_revoked(facts.serial, at=moment):
                raise RevokedCertificateError(f"certificate {facts.serial:x} has been revoked")
        # 4. Carries a well-formed network identity.
        if facts.identity is None:
            raise CertificateIdentityError(facts.identity_problem or "no network identity")
        return facts.identity

    def _read(self, certificate: x509.Certificate) -> _Certificate:
        """The facts of a certificate that do not change with time or with the CRL, read once.

        Every message carries its author's certificate and every connection its peer's, so a transaction
        checks the same certificate three times or more. Hashing it to find its cached facts and reading
        its dates and serial each time took 134 µs of a single-report transaction's ~2,300 µs at the
        exchange (in process, issue 11); with its facts kept, 67 µs, mostly the CRL file's ``stat``.
        """
        try:
            certificate.verify_directly_issued_by(self.ca_certificate)
            issued = True
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            issued = False
        identity, problem = None, None
        if issued:  # An identity is read only from a certificate the CA signed.
            try:
                identity = identity_from_certificate(certificate)
            except CertificateIdentityError as exc:
                problem = exc.message
        if identity is not None and not prime_order_key(certificate.public_key()):
            # The CA refuses such keys; one issued before it did must not serve (certs/authority.py).
            identity, problem = None, "the certificate's key is of small order: anyone could sign with it"
        facts = _Certificate(
            issued_by_ca=issued,
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            serial=certificate.serial_number,
            identity=identity,
            identity_problem=problem,
        )
        if len(self._certificates) >= self.CERTIFICATES_KEPT:
            self._certificates.clear()
        self._certificates[certificate] = facts
        return facts
