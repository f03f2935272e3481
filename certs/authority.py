"""The network certificate authority, as run by the secretariat.

A CA directory holds ``ca.key`` (mode 0600, never leaves the secretariat), ``ca.pem`` (published to every
member), ``revoked.json`` (the CA's own record of revocations) and ``crl.pem`` (the signed revocation list
it publishes). Members make their own key and certificate signing request; the CA decides the identity
it binds (member id, role, countries) and ignores whatever names the request asked for, so that a member
cannot obtain a certificate for someone else's id by writing it into a CSR.

All keys are Ed25519: the same key authenticates a member on TLS and signs its messages (see
docs/protocol.md for why one key serves both).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.identity import identity_uris, prime_order_key
from federation.errors import ProtocolError

CA_KEY = "ca.key"
CA_CERT = "ca.pem"
REVOKED = "revoked.json"
CRL = "crl.pem"
CRL_NUMBER = "crlnumber"


class AuthorityError(ProtocolError):
    """A CA operation could not be done as asked."""

    code = "authority_error"


class NotARequestError(AuthorityError):
    """The bytes are not a PEM certificate signing request at all."""


@dataclass(frozen=True)
class KeyPair:
    key_pem: bytes
    csr_pem: bytes


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def write_private_key(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only, refusing to overwrite an existing one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _private_pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def create_ca(directory: Path, name: str, *, days: int = 3650, now: dt.datetime | None = None) -> x509.Certificate:
    """Create a new network CA in ``directory`` (which must not already hold one)."""
    now = now or _utcnow()
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / CA_KEY).exists():
        raise AuthorityError(f"{directory / CA_KEY} already exists; refusing to replace a CA key")
    key = ed25519.Ed25519PrivateKey.generate()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, None)
    )
    write_private_key(directory / CA_KEY, _private_pem(key))
    (directory / CA_CERT).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / REVOKED).write_text("[]\n")
    publish_crl(directory, now=now)
    return certificate


def new_key_and_csr(member_id: str) -> KeyPair:
    """Make a member's private key and a certificate signing request for it (run by the member)."""
    key = ed25519.Ed25519PrivateKey.generate()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, member_id)]))
        .sign(key, None)
    )
    return KeyPair(_private_pem(key), csr.public_bytes(serialization.Encoding.PEM))


def request_key(csr_pem: bytes) -> ed25519.Ed25519PublicKey:
    """The key of a certificate signing request the CA would certify: a well-formed request, its
    signature verifying, for an Ed25519 key of prime order.

    Raises:
        NotARequestError: not a PEM certificate signing request.
        AuthorityError: anything else about it.
    """
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except (ValueError, x509.InvalidVersion) as exc:  # A version other than 1 is not a ValueError.
        raise NotARequestError("not a PEM certificate signing request") from exc
    try:  # Both are read lazily: a malformed or unknown key type shows only here.
        public_key = csr.public_key()
        signed = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise AuthorityError("the request's key is of an unknown type or malformed: make a new key") from exc
    if not signed:
        raise AuthorityError("the certificate signing request's signature does not verify: make a new one")
    if not isinstance(public_key, ed25519.Ed25519PublicKey):
        raise AuthorityError("the network only issues certificates for Ed25519 keys")
    if not prime_order_key(public_key):  # OpenSSL verifies such a request's signature even so.
        raise AuthorityError("the request's key is of small order or not canonically encoded: make a new key")
    return public_key


def _load_ca(directory: Path) -> tuple[x509.Certificate, ed25519.Ed25519PrivateKey]:
    try:
        certificate = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise AuthorityError(f"cannot load the CA from {directory}: {exc}") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise AuthorityError("the CA key is not an Ed25519 key")
    return certificate, key


def issue_certificate(
    directory: Path,
    csr_pem: bytes,
    *,
    member_id: str,
    role: str = "member",
    countries: tuple[str, ...] | list[str] = (),
    dns_names: tuple[str, ...] | list[str] = (),
    ip_addresses: tuple[str, ...] | list[str] = (),
    days: int = 365,
    now: dt.datetime | None = None,
) -> bytes:
    """Issue a certificate for the key in ``csr_pem``, binding the identity the CA decided.

    The certificate is valid for both TLS client and server authentication, so one certificate serves a
    member's outbound deliveries and its inbound endpoint. ``now`` may lie in the past to make an
    already-expired certificate for tests.
    """
    now = now or _utcnow()
    ca_certificate, ca_key = _load_ca(directory)
    public_key = request_key(csr_pem)
    names: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(uri) for uri in identity_uris(member_id, role, tuple(countries))
    ]
    names += [x509.DNSName(name) for name in dns_names]
    try:
        names += [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]
    except ValueError as exc:
        raise AuthorityError(str(exc)) from exc
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, member_id)]))
        .issuer_name(ca_certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, None)
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def revoke(
    directory: Path,
    serial: int,
    *,
    reason: str = "unspecified",
    now: dt.datetime | None = None,
    crl_days: int = 7,
) -> None:
    """Record a revocation and publish a fresh CRL."""
    now = now or _utcnow()
    try:
        flag = x509.ReasonFlags(reason)
    except ValueError as exc:
        choices = ", ".join(flag.value for flag in x509.ReasonFlags)
        raise AuthorityError(f"unknown revocation reason {reason!r}; use one of {choices}") from exc
    records = [record for record in json.loads((directory / REVOKED).read_text()) if record["serial"] != str(serial)]
    # Revoking again replaces the earlier record: a rotation later found to be a compromise becomes one.
    records.append({"serial": str(serial), "revoked_at": now.isoformat(), "reason": flag.value})
    (directory / REVOKED).write_text(json.dumps(records, indent=2) + "\n")
    publish_crl(directory, now=now, days=crl_days)


def next_crl_number(directory: Path) -> int:
    """Take the next CRL number from ``crlnumber`` (as openssl's CA does): every list ever published differs."""
    path = directory / CRL_NUMBER
    try:
        number = int(path.read_text().strip()) + 1
    except FileNotFoundError:
        number = 1
    except ValueError as exc:
        raise AuthorityError(f"{path} does not hold a number") from exc
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{number}\n")
    os.replace(tmp, path)
    return number


def publish_crl(directory: Path, *, days: int = 7, now: dt.datetime | None = None) -> bytes:
    """Sign and write ``crl.pem``: the revocation list members and the exchange load.

    The list is an ordinary X.509 CRL signed by the network CA, so any member can check it came from the
    CA whoever handed it over, and ``openssl crl`` reads it. Each list carries the next CRL number, so a
    verifier can refuse an older list replayed to it.
    """
    now = now or _utcnow()
    ca_certificate, ca_key = _load_ca(directory)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_certificate.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + dt.timedelta(days=days))
        .add_extension(x509.CRLNumber(next_crl_number(directory)), critical=False)
    )
    for record in json.loads((directory / REVOKED).read_text()):
        revoked = (
            x509.RevokedCertificateBuilder()
            .serial_number(int(record["serial"]))
            .revocation_date(dt.datetime.fromisoformat(record["revoked_at"]))
            .add_extension(x509.CRLReason(x509.ReasonFlags(record["reason"])), critical=False)
            .build()
        )
        builder = builder.add_revoked_certificate(revoked)
    crl = builder.sign(ca_key, None)
    pem = crl.public_bytes(serialization.Encoding.PEM)
    # Write and rename, so a service re-reading the file never sees half of it.
    tmp = directory / (CRL + ".tmp")
    tmp.write_bytes(pem)
    os.replace(tmp, directory / CRL)
    return pem


def crl_number(pem: bytes) -> int:
    """The CRL number of a PEM CRL (0 when it carries none).

    Raises:
        AuthorityError: not a PEM CRL.
    """
    try:
        crl = x509.load_pem_x509_crl(pem)
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return 0
    except (ValueError, x509.InvalidVersion, x509.DuplicateExtension) as exc:  # The last two: not ValueErrors.
        raise AuthorityError("not a PEM certificate revocation list") from exc
    return int(number)
