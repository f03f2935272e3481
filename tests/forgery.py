"""A hand-driven network peer for tests: builds, signs, tampers with and posts messages exactly as told.

It uses the product's Signer, so a message it signs honestly is byte-for-byte what a node would send;
every deviation (wrong key, wrong audience, old issued-at, edited payload) is explicit in the test.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from certs import authority
from certs.identity import certificate_thumbprint, identity_uris
from federation.canonical import url_fingerprint
from federation.signing import Signer, canonical_json

REPORT = "hotline.report.v1"
TRANSACTION = "hotline.transaction.v1"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def report_claims(signer: Signer, url: str | None = None, *, country: str = "DE", **header: Any) -> dict[str, Any]:
    url = url or f"http://forged.example/{uuid.uuid4()}"
    return signer.claims(
        "exchange",
        now=now(),
        header={
            "url_fingerprint": url_fingerprint(url),
            "content_hashes": [],
            "hosting_country": country,
            "legal_status": "baseline",
            "priority": "normal",
            "confirmed_at": now().isoformat().replace("+00:00", "Z"),
            **header,
        },
        body={"url": url},
    )


def tamper_payload(token: str, edit: Any) -> str:
    """Replace the payload of a compact JWS with ``edit(claims)``, keeping the original signature."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    edited = base64.urlsafe_b64encode(canonical_json(edit(claims))).rstrip(b"=").decode()
    return ".".join((header, edited, signature))


class ForgingPeer:
    """Signs with one identity's key and connects with (possibly) another's TLS certificate."""

    def __init__(self, *, signer: Signer, tls_cert: Path | None, tls_key: Path | None, ca: Path, url: str) -> None:
        self.signer = signer
        self.url = url
        self.ca = str(ca)
        self.session = requests.Session()
        self.session.trust_env = False
        self.cert = (str(tls_cert), str(tls_key)) if tls_cert and tls_key else None

    def transaction(self, documents: list[str], *, aud: str = "exchange", **overrides: Any) -> dict[str, str]:
        claims = {**self.signer.claims(aud, now=now(), documents=documents), **overrides}
        return self.signer.sign_flattened(TRANSACTION, claims)

    def post(self, body: Any, *, raw: bytes | None = None) -> requests.Response:
        data = raw if raw is not None else json.dumps(body).encode()
        return self.session.post(
            f"{self.url}/v1/transactions",
            data=data,
            headers={"Content-Type": "application/jose+json"},
            cert=self.cert,
            verify=self.ca,
            timeout=10,
        )

    def outcomes(self, response: requests.Response) -> list[dict[str, Any]]:
        """The per-document results of a transaction receipt (payload read without verification)."""
        assert response.status_code == 200, response.text
        payload = response.json()["payload"]
        results: list[dict[str, Any]] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))[
            "results"
        ]
        return results


def decode(token: str) -> tuple[str, dict[str, Any]]:
    """The ``typ`` and claims of a compact JWS, read without verification (tests inspect what was sent)."""
    header, payload, _ = token.split(".")
    pad = lambda part: part + "=" * (-len(part) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(header)))["typ"], json.loads(base64.urlsafe_b64decode(pad(payload)))


def peer_as(layout: Any, member_id: str, *, url: str | None = None) -> ForgingPeer:
    """A peer that signs and connects as ``member_id`` (a member, or the exchange), by default to the exchange."""
    spec = layout.exchange if member_id == layout.exchange.member_id else layout.members[member_id]
    return ForgingPeer(
        signer=Signer.from_files(spec.key, spec.cert),
        tls_cert=spec.cert,
        tls_key=spec.key,
        ca=layout.ca_cert,
        url=url or layout.exchange.url,
    )


NEUTRAL_POINT = bytes([1]) + bytes(31)
"""The encoding of Ed25519's neutral element: a public key (or R) of small order."""
UNIVERSAL_SIGNATURE = NEUTRAL_POINT + bytes(32)
"""R = the neutral point, S = 0: with a public key of small order, OpenSSL accepts it for every message."""


def small_order_csr(member_id: str) -> bytes:
    """A PEM signing request for the small-order key :data:`NEUTRAL_POINT`, "signed" with
    :data:`UNIVERSAL_SIGNATURE`: a request made for a real key, with the key's 32 bytes and the
    signature's 64 bytes (the DER's last) replaced in place."""
    real = authority.new_key_and_csr(member_id).csr_pem
    request = x509.load_pem_x509_csr(real)
    key = request.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    der = request.public_bytes(serialization.Encoding.DER).replace(key, NEUTRAL_POINT)
    forged = der[: -len(UNIVERSAL_SIGNATURE)] + UNIVERSAL_SIGNATURE
    return x509.load_der_x509_csr(forged).public_bytes(serialization.Encoding.PEM)


def small_order_certificate(
    ca_dir: Path, member_id: str, countries: tuple[str, ...], now: dt.datetime
) -> x509.Certificate:
    """A certificate the network CA signs, with its key directly, for the small-order key
    :data:`NEUTRAL_POINT` (the CA refuses such a key from a request)."""
    ca_key = serialization.load_pem_private_key((ca_dir / authority.CA_KEY).read_bytes(), password=None)
    ca_certificate = x509.load_pem_x509_certificate((ca_dir / authority.CA_CERT).read_bytes())
    names = [x509.UniformResourceIdentifier(uri) for uri in identity_uris(member_id, "member", countries)]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, member_id)]))
        .issuer_name(ca_certificate.subject)
        .public_key(ed25519.Ed25519PublicKey.from_public_bytes(NEUTRAL_POINT))
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650 * 3))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, None)  # type: ignore[arg-type]
    )


def universally_signed(certificate: x509.Certificate, typ: str, claims: dict[str, Any]) -> str:
    """``claims`` as a compact JWS under ``certificate`` (a small-order key), signed with
    :data:`UNIVERSAL_SIGNATURE`, which OpenSSL accepts for every message under such a key."""
    header = {
        "alg": "Ed25519",
        "kid": certificate_thumbprint(certificate),
        "typ": typ,
        "x5c": [base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()],
    }
    return ".".join(_b64url(raw) for raw in (canonical_json(header), canonical_json(claims), UNIVERSAL_SIGNATURE))


def with_unknown_x509_version(token: str) -> str:
    """``token`` with x5c[0]'s X.509 version made 15 (only 1 to 3 exist); the signature is unchanged."""
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    der = bytearray(base64.b64decode(decoded["x5c"][0]))
    marker = bytes.fromhex("a003020102")  # [0] EXPLICIT INTEGER 2 (v3).
    der[der.index(marker) + len(marker) - 1] = 14
    decoded["x5c"] = [base64.b64encode(bytes(der)).decode()]
    return ".".join((_b64url(json.dumps(decoded).encode()), payload, signature))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
