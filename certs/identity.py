"""Who a network certificate belongs to.

A certificate binds a key to a network identity through URI subject alternative names, so that the
binding is visible to any standard tool (``openssl x509 -text``) and needs no private extension:

- ``urn:hotline-net:member:<id>`` — the member (or exchange) id; exactly one.
- ``urn:hotline-net:role:<member|exchange>`` — what the holder may do; exactly one.
- ``urn:hotline-net:country:<ISO 3166-1 alpha-2>`` — the countries a member covers; zero or more.

The subject common name repeats the id for people reading logs; software reads only the URIs.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache

import nacl.bindings
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning

from federation.errors import ProtocolError

URN_PREFIX = "urn:hotline-net:"
MEMBER_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
COUNTRY_PATTERN = re.compile(r"^[A-Z]{2}$")
ROLES = ("member", "exchange")


class CertificateIdentityError(ProtocolError):
    """The certificate does not carry a well-formed network identity."""

    status = 403
    code = "certificate_identity_invalid"


@dataclass(frozen=True)
class NetworkIdentity:
    """The identity a network certificate asserts, with the facts verifiers need."""

    member_id: str
    role: str
    countries: tuple[str, ...]
    serial: int
    not_before: dt.datetime
    not_after: dt.datetime
    thumbprint: str
    """base64url SHA-256 of the DER certificate (the JWS ``x5t#S256`` value), used as the key id."""


def certificate_thumbprint(certificate: x509.Certificate) -> str:
    """Return the RFC 7515 ``x5t#S256`` thumbprint: unpadded base64url of SHA-256 over the DER bytes."""
    digest = hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def identity_uris(member_id: str, role: str, countries: tuple[str, ...] | list[str]) -> list[str]:
    """Return the URI SAN values that encode an identity, validating each part."""
    if not MEMBER_ID_PATTERN.match(member_id):
        raise CertificateIdentityError(f"member id {member_id!r} is not of the form [a-z0-9][a-z0-9-]{{1,62}}")
    if role not in ROLES:
        raise CertificateIdentityError(f"role {role!r} is not one of {', '.join(ROLES)}")
    for country in countries:
        if not COUNTRY_PATTERN.match(country):
            raise CertificateIdentityError(f"country {country!r} is not an ISO 3166-1 alpha-2 code")
    uris = [f"{URN_PREFIX}member:{member_id}", f"{URN_PREFIX}role:{role}"]
    uris += [f"{URN_PREFIX}country:{country}" for country in countries]
    return uris


def prime_order_key(public_key: object) -> bool:
    """An Ed25519 public key libsodium accepts as a point of prime order, canonically encoded.

    A small-order key makes one signature (R = the neutral point, S = 0) verify for every message under
    a lenient verifier such as OpenSSL's: the CA does not certify one, and a certificate holding one
    names no one (docs/protocol.md, section 4).
    """
    return isinstance(public_key, ed25519.Ed25519PublicKey) and bool(
        nacl.bindings.crypto_core_ed25519_is_valid_point(public_key.public_bytes_raw())
    )


def identity_from_certificate(certificate: x509.Certificate) -> NetworkIdentity:
    """Read the network identity a certificate asserts.

    This does not say whether the certificate is trusted: see :mod:`federation.trust` for that.

    Raises:
        CertificateIdentityError: the certificate has no, or more than one, member id or role.
    """
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as exc:
        raise CertificateIdentityError("certificate has no subject alternative name") from exc
    members: list[str] = []
    roles: list[str] = []
    countries: list[str] = []
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if not uri.startswith(URN_PREFIX):
            continue
        kind, _, value = uri[len(URN_PREFIX) :].partition(":")
        if kind == "member":
            members.append(value)
        elif kind == "role":
            roles.append(value)
        elif kind == "country":
            countries.append(value)
    if len(members) != 1 or len(roles) != 1:
        raise CertificateIdentityError("certificate must name exactly one member id and one role")
    identity_uris(members[0], roles[0], countries)  # Validates every part.
    return NetworkIdentity(
        member_id=members[0],
        role=roles[0],
        countries=tuple(sorted(countries)),
        serial=certificate.serial_number,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        thumbprint=certificate_thumbprint(certificate),
    )


@lru_cache(maxsize=1024)
def load_pem_certificate(pem: bytes) -> x509.Certificate:
    """Parse a PEM certificate, caching by content (peers present the same certificate on every hop).

    Raises:
        CertificateIdentityError: the bytes are not a PEM certificate.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", CryptographyDeprecationWarning)
            return x509.load_pem_x509_certificate(pem)
    except (ValueError, CryptographyDeprecationWarning, x509.InvalidVersion) as exc:
        raise CertificateIdentityError("not a well-formed PEM X.509 certificate") from exc
