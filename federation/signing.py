"""Signing and verifying network messages (JWS, RFC 7515, with the RFC 9864 ``Ed25519`` algorithm).

Every message on the network is a JWS whose protected header carries ``alg: Ed25519``, the author's
certificate in ``x5c`` and its thumbprint in ``kid``, and a ``typ`` naming the message type. Carrying the
certificate makes each message verifiable on its own: a destination checks the origin's signature with
the origin's certificate, checks that certificate against the network CA and revocation list, and needs
no key directory that could be stale or forged. The claims (``iss``, ``aud``, ``jti``, ``iat`` and the
message's own fields) are the JSON payload.

Verification is all-or-nothing and raises: :func:`verify_jws` returns only a fully verified message.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import re
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.exceptions
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.utils import CryptographyDeprecationWarning
from joserfc import jws
from joserfc.errors import BadSignatureError, InvalidKeyCurveError, JoseError
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import OKPKey
from joserfc.jws import JWSRegistry

import schemas
from certs.identity import NetworkIdentity, certificate_thumbprint, identity_from_certificate
from federation.errors import ProtocolError
from federation.messages import schema_name
from federation.timestamps import from_numeric_date
from federation.trust import ExpiredCertificateError, RevokedCertificateError, TrustStore

ALGORITHM = "Ed25519"
"""The only algorithm accepted; RFC 9864 deprecates the polymorphic ``EdDSA`` name."""


class _Ed25519(JWSAlgModel):
    """RFC 9864's ``Ed25519``: signed with OpenSSL (cryptography) as joserfc does, verified by libsodium
    (PyNaCl) instead.

    Twice as fast here for a document (58 against 115 µs per verification, interleaved microbench), and
    a receiver verifies four signatures per report end to end (issue 11). Not for large messages:
    libsodium hashes with portable C, so a transaction of 100 documents (250 KB) takes 1.4-1.5 ms
    against OpenSSL's 0.5-0.8 (7-9 µs per document it carries, against 60-80 µs saved on each
    document's own signature; four transactions carry a report or its receipt). Signing stays
    with OpenSSL for that reason: libsodium signs faster only below about 2.5 KB (measured 2026-12-02,
    docs/performance.md). libsodium is also the stricter verifier:
    it refuses a public key or a signature's R of small order and non-canonical encodings, which
    OpenSSL accepts. With a small-order key, R = the neutral point and S = 0 verify under OpenSSL for
    every message, so anyone could speak for a certificate that holds such a key; libsodium refuses
    them. No honest signer produces any of these (docs/protocol.md, section 4).
    """

    name = ALGORITHM
    description = "EdDSA using the Ed25519 parameter set, verified by libsodium"
    key_type = "OKP"

    def check_key(self, key: OKPKey) -> None:
        super().check_key(key)
        if key.curve_name != ALGORITHM:
            raise InvalidKeyCurveError(f"only {ALGORITHM} keys sign and verify here")

    def sign(self, msg: bytes, key: OKPKey) -> bytes:
        private = key.get_op_key("sign")
        if not isinstance(private, ed25519.Ed25519PrivateKey):
            raise InvalidKeyCurveError(f"only {ALGORITHM} keys sign here")
        return private.sign(msg)

    def verify(self, msg: bytes, sig: bytes, key: OKPKey) -> bool:
        public = key.get_op_key("verify")
        if len(sig) != nacl.bindings.crypto_sign_BYTES or not isinstance(public, ed25519.Ed25519PublicKey):
            return False
        try:
            nacl.bindings.crypto_sign_open(sig + msg, public.public_bytes_raw())
        except nacl.exceptions.BadSignatureError:
            return False
        return True


def _registry() -> JWSRegistry:
    """joserfc's registry, allowing only Ed25519 (verified by :class:`_Ed25519`) and sizes that fit a
    certificate in the header."""
    registry = JWSRegistry(algorithms=[ALGORITHM])
    registry.algorithms = {ALGORITHM: _Ed25519()}  # This registry's own: joserfc's shared one is untouched.
    # The header carries the author's certificate (about 600 bytes in base64); a transaction's payload
    # carries up to 100 documents. Both limits stay well below the HTTP body limit's order of size.
    registry.max_header_length = 4096
    registry.max_payload_length = 4 * 1024 * 1024
    return registry


REGISTRY = _registry()


class MalformedMessageError(ProtocolError):
    code = "malformed_message"


class MalformedJSONError(ProtocolError):
    code = "malformed_json"


class UnsupportedAlgorithmError(ProtocolError):
    code = "unsupported_algorithm"


class WrongMessageTypeError(ProtocolError):
    code = "wrong_message_type"


class BadSignatureVerificationError(ProtocolError):
    status = 403
    code = "bad_signature"


class IssuerMismatchError(ProtocolError):
    """The claimed author is not the holder of the signing certificate."""

    status = 403
    code = "issuer_mismatch"


class ClockSkewError(ProtocolError):
    """The issued-at lies outside the window the receiver accepts."""

    status = 401
    code = "clock_skew"


class SigningKeyError(ProtocolError):
    code = "signing_key_invalid"


@dataclass(frozen=True)
class VerifiedMessage:
    """A message whose signature, certificate and schema have all been checked."""

    typ: str
    claims: dict[str, Any]
    author: NetworkIdentity
    token: str


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def json_problem(exc: BaseException) -> str:
    """Say what is wrong with undecodable JSON without quoting it: where it broke, or that it nests too deep."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else type(exc).__name__


def canonical_json(value: Any) -> bytes:
    """The JSON bytes we sign: compact, keys sorted, UTF-8 (receivers verify the bytes as sent)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")


_UUID7_CLEAR = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
"""Every bit but the version's four and the variant's two."""
_UUID7_VERSION_AND_VARIANT = (0x7 << 76) | (0x2 << 62)


def new_message_id() -> str:
    """A new message id: a time-ordered UUID (version 7, RFC 9562 section 5.7), random in its last 74 bits.

    Ids that grow with time keep every index keyed on them append-only: a receiver's tables of reports,
    cases, documents and seen transactions are keyed on these ids, and random (version 4) ids made each
    insert land on a different page of a large index (issue 11: the cost of ingest grew with the store).
    The protocol accepts any UUID; the time an id carries is the millisecond it was made.

    Written here rather than taken from the ``uuid6`` package, whose ``uuid7`` adds a millisecond to the
    previous id's time whenever the clock has not moved on: 10,000 ids made in 74 ms carried a time
    10 s ahead of the clock (measured 2026-12-02), and a busy node's ids drifted into the future for as
    long as it made more than 1,000 a second. Ids made in the same millisecond are ordered at random,
    which the indexes do not mind (nothing orders by id alone). 3.7 against 10.1 µs. Python 3.14's
    ``uuid.uuid7`` does the same without the drift; it replaces this once the services run on it.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & _UUID7_CLEAR | _UUID7_VERSION_AND_VARIANT
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


SHORT_ID = re.compile(r"[0-9a-f]{8}")
"""What :func:`short_id` shows: an analyst may search by it."""


def short_id(message_id: str) -> str:
    """The eight characters people read, say and search for an id: its last eight hex digits.

    A version-7 id begins with its millisecond time, so every id made in the same minute or so shares
    its first eight characters (the pages showed one "case 01a23019" for a whole batch); its last 62
    bits are random, as all of a version-4 id's are.
    """
    return message_id[-8:]


class Signer:
    """A member's (or the exchange's) signing key with the certificate that binds it to the member id."""

    def __init__(self, private_key: ed25519.Ed25519PrivateKey, certificate: x509.Certificate) -> None:
        public = certificate.public_key()
        if not isinstance(public, ed25519.Ed25519PublicKey) or public.public_bytes_raw() != (
            private_key.public_key().public_bytes_raw()
        ):
            raise SigningKeyError("the private key does not belong to the certificate")
        self.identity = identity_from_certificate(certificate)
        self.member_id = self.identity.member_id
        self.certificate = certificate
        self._key = OKPKey.import_key(private_key)  # type: ignore[arg-type]
        self._x5c = [base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")]
        self._kid = certificate_thumbprint(certificate)

    @classmethod
    def from_files(cls, key_path: Path, certificate_path: Path) -> Signer:
        try:
            key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
            certificate = x509.load_pem_x509_certificate(Path(certificate_path).read_bytes())
        except (OSError, ValueError) as exc:
            raise SigningKeyError(f"cannot load key {key_path} / certificate {certificate_path}: {exc}") from exc
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise SigningKeyError(f"{key_path} is not an Ed25519 private key")
        return cls(key, certificate)

    def header(self, typ: str) -> dict[str, Any]:
        return {"alg": ALGORITHM, "kid": self._kid, "typ": typ, "x5c": self._x5c}

    def claims(self, aud: str, *, now: dt.datetime, jti: str | None = None, **fields: Any) -> dict[str, Any]:
        """Return the common claims (author, recipient, id, issued-at) merged with ``fields``."""
        return {
            "iss": self.member_id,
            "aud": aud,
            "jti": jti or new_message_id(),
            "iat": int(now.timestamp()),
            **fields,
        }

    def sign_compact(self, typ: str, claims: dict[str, Any]) -> str:
        """Sign ``claims`` as a JWS compact serialization (used for documents)."""
        return jws.serialize_compact(
            self.header(typ), canonical_json(claims), self._key, algorithms=[ALGORITHM], registry=REGISTRY
        )

    def sign_flattened(self, typ: str, claims: dict[str, Any]) -> dict[str, str]:
        """Sign ``claims`` as a JWS flattened JSON serialization (used for HTTP bodies)."""
        flattened = jws.serialize_json(
            {"protected": self.header(typ)},
            canonical_json(claims),
            self._key,
            algorithms=[ALGORITHM],
            registry=REGISTRY,
        )
        return {
            "protected": flattened["protected"],
            "payload": flattened["payload"],
            "signature": flattened["signature"],
        }

    def refresh(self, token: str, *, now: dt.datetime, max_age: dt.timedelta) -> str:
        """Return ``token`` signed again now, same id and content, if it is ours and older than ``max_age``.

        A receiver checks a document at its first hop for freshness (docs/protocol.md, section 6), so a
        document that waited in our outbox (the exchange was down) is signed again before it is sent.
        Documents by other authors, and fresh ones, are returned unchanged.
        """
        header_part, payload_part, _ = token.split(".")
        claims = json.loads(_b64url_decode(payload_part))
        if claims.get("iss") != self.member_id or from_numeric_date(claims["iat"]) >= now - max_age:
            return token
        header = json.loads(_b64url_decode(header_part))
        return self.sign_compact(header["typ"], {**claims, "iat": int(now.timestamp())})


def flattened_to_compact(unverified_body: Any) -> str:
    """Turn a flattened JSON serialization into the equivalent compact one (same signing input).

    Raises:
        MalformedMessageError: the object is not a flattened JWS with exactly the three members we use.
    """
    if not isinstance(unverified_body, dict) or set(unverified_body) != {"protected", "payload", "signature"}:
        raise MalformedMessageError(
            "body must be a JWS flattened JSON serialization with exactly protected, payload and signature"
        )
    parts = [unverified_body["protected"], unverified_body["payload"], unverified_body["signature"]]
    if not all(isinstance(part, str) and part for part in parts):
        raise MalformedMessageError("protected, payload and signature must be non-empty strings")
    return ".".join(parts)


def _validate_header(encoded: str, unverified_header: dict[str, Any]) -> None:
    if encoded in _HEADERS_SEEN:
        return
    schemas.validate("jws-header", unverified_header)
    if len(_HEADERS_SEEN) > 4096:
        _HEADERS_SEEN.clear()
    _HEADERS_SEEN.add(encoded)


_HEADERS_SEEN: set[str] = set()


@lru_cache(maxsize=1024)
def _certificate_of(unverified_x5c: str) -> tuple[x509.Certificate, str, OKPKey]:
    """Parse an ``x5c`` entry once: the certificate, its thumbprint, and its key as a JWK (cached by value).

    Raises:
        MalformedMessageError, UnsupportedAlgorithmError.
    """
    try:
        # A certificate cryptography only warns about (a serial that is not positive) is refused.
        with warnings.catch_warnings():
            warnings.simplefilter("error", CryptographyDeprecationWarning)
            certificate = x509.load_der_x509_certificate(base64.b64decode(unverified_x5c, validate=True))
    except (ValueError, binascii.Error, CryptographyDeprecationWarning, x509.InvalidVersion) as exc:
        # InvalidVersion (an X.509 version other than 1 or 3) is not a ValueError in cryptography.
        raise MalformedMessageError("x5c[0] is not a well-formed base64 DER certificate") from exc
    try:
        public_key = certificate.public_key()
    except (UnsupportedAlgorithm, ValueError) as exc:
        raise MalformedMessageError("x5c[0] holds a key of an unknown or malformed type") from exc
    if not isinstance(public_key, ed25519.Ed25519PublicKey):
        raise UnsupportedAlgorithmError("the signing certificate does not hold an Ed25519 key")
    return certificate, certificate_thumbprint(certificate), OKPKey.import_key(public_key)  # type: ignore[arg-type]


def check_first_hop(
    author: NetworkIdentity, issued_at: dt.datetime, *, trust: TrustStore, now: dt.datetime, clock_skew: dt.timedelta
) -> None:
    """The extra checks on a document received from its own author: fresh, and signed with a key valid now.

    Raises:
        ClockSkewError, ExpiredCertificateError, RevokedCertificateError.
    """
    if issued_at < now - clock_skew:
        raise ClockSkewError(
            f"issued-at {issued_at:%Y-%m-%dT%H:%M:%SZ} is more than {int(clock_skew.total_seconds())} s before the "
            f"receiver's clock ({now:%Y-%m-%dT%H:%M:%SZ}): a document's author must send it freshly signed"
        )
    if not author.not_before <= now <= author.not_after:
        raise ExpiredCertificateError(f"the author's certificate is not valid now ({now:%Y-%m-%dT%H:%M:%SZ})")
    if trust.is_revoked(author.serial, at=now):
        raise RevokedCertificateError(f"the author's certificate {author.serial:x} has been revoked")


def verify_jws(
    unverified_token: str,
    *,
    expected_typ: str | tuple[str, ...],
    trust: TrustStore,
    now: dt.datetime,
    clock_skew: dt.timedelta,
    fresh: bool = False,
    first_hop: bool = False,
) -> VerifiedMessage:
    """Verify a JWS compact serialization and return its checked claims.

    The certificate must have been valid when the message was issued (``iat``), so that messages signed
    before a key rotation still verify. The issued-at must never lie further in the future than
    ``clock_skew``; with ``fresh`` (transactions) it must not lie further in the past either. With
    ``first_hop`` (a document received from its own author) it must be fresh too, and the certificate
    must also be valid and unrevoked now: relayed documents may be days old, but nobody can hand in a
    new document signed with a key revoked as superseded by back-dating it.

    Raises:
        MalformedMessageError, MalformedJSONError, UnsupportedAlgorithmError, WrongMessageTypeError,
        BadSignatureVerificationError, IssuerMismatchError, SchemaValidationError, and the trust
        store's certificate errors.
    """
    # 1. Split the token and parse the protected header, without trusting anything in it yet.
    parts = unverified_token.split(".")
    if len(parts) != 3:
        raise MalformedMessageError("not a JWS compact serialization (three base64url parts)")
    try:
        unverified_header = json.loads(_b64url_decode(parts[0]))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedMessageError("JWS protected header is not base64url JSON") from exc
    if not isinstance(unverified_header, dict):
        raise MalformedMessageError("JWS protected header is not a JSON object")
    # 2. Accept exactly one algorithm, chosen by us and not by the message.
    if unverified_header.get("alg") != ALGORITHM:
        raise UnsupportedAlgorithmError(f"alg must be {ALGORITHM!r}, not {unverified_header.get('alg')!r}")
    _validate_header(parts[0], unverified_header)
    expected = (expected_typ,) if isinstance(expected_typ, str) else expected_typ
    if unverified_header["typ"] not in expected:
        raise WrongMessageTypeError(f"typ {unverified_header['typ']!r} is not one of {', '.join(expected)}")
    # 3. Load the author's certificate and check that kid names it.
    unverified_certificate, thumbprint, public_jwk = _certificate_of(unverified_header["x5c"][0])
    if thumbprint != unverified_header["kid"]:
        raise MalformedMessageError("kid is not the x5t#S256 thumbprint of x5c[0]")
    # 4. Verify the signature over the exact bytes received.
    try:
        verified = jws.deserialize_compact(unverified_token, public_jwk, algorithms=[ALGORITHM], registry=REGISTRY)
    except BadSignatureError as exc:
        raise BadSignatureVerificationError("signature does not verify with the key in x5c") from exc
    except (JoseError, ValueError) as exc:
        raise MalformedMessageError(f"JWS could not be read: {exc}") from exc
    # 5. Parse the claims and validate them against the message type's schema.
    try:
        claims = json.loads(verified.payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than the decoder goes is malformed, not a crash.
        raise MalformedJSONError("JWS payload is not valid JSON") from exc
    schemas.validate(schema_name(unverified_header["typ"]), claims)
    # 6. The certificate was issued by the network CA, was valid at issue time, is not revoked.
    issued_at = from_numeric_date(claims["iat"])
    if issued_at > now + clock_skew or ((fresh or first_hop) and issued_at < now - clock_skew):
        raise ClockSkewError(
            f"issued-at {issued_at:%Y-%m-%dT%H:%M:%SZ} is more than {int(clock_skew.total_seconds())} s "
            f"from the receiver's clock ({now:%Y-%m-%dT%H:%M:%SZ})"
        )
    author = trust.verify_certificate(unverified_certificate, at=issued_at)
    if first_hop:
        check_first_hop(author, issued_at, trust=trust, now=now, clock_skew=clock_skew)
    # 7. The claimed author is the certificate's holder.
    if claims["iss"] != author.member_id:
        raise IssuerMismatchError(f"iss {claims['iss']!r} is not the signer {author.member_id!r}")
    return VerifiedMessage(typ=unverified_header["typ"], claims=claims, author=author, token=unverified_token)
