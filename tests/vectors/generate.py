"""Regenerate tests/vectors/messages.json: signed network messages, valid and broken, for every implementer.

Run ``python -m tests.vectors.generate``. It makes a throwaway CA and members, signs the vectors, writes
only public material (certificates, CRL, signed messages) and throws the private keys away, so the file
is safe to publish and cannot be used to sign anything new. Each vector says what a verifier must
conclude: the verified claims, or the error code (docs/protocol.md, "Error codes").
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

from cryptography import x509

from certs import authority
from certs.devnet import issue_dev_identity
from federation.canonical import url_fingerprint
from federation.signing import Signer, canonical_json
from tests.forgery import small_order_certificate, universally_signed, with_unknown_x509_version

OUT = Path(__file__).with_name("messages.json")
VERIFY_AT = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.UTC)
CASE_ID = "6f1c2a9e-4b1d-4c8a-9f3e-2d7b5a1c0e42"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _with_payload(token: str, payload: bytes) -> str:
    header, _, signature = token.split(".")
    return ".".join((header, _b64(payload), signature))


def _with_header(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    return ".".join((_b64(json.dumps({**decoded, **changes}).encode()), payload, signature))


def _with_signature(token: str, other: str) -> str:
    """``token``'s header and payload with ``other``'s signature."""
    return ".".join([*token.split(".")[:2], other.split(".")[2]])


def _negative_serial(token: str) -> str:
    """The same token with x5c[0]'s serial number made negative (forbidden by RFC 5280)."""
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    der = bytearray(base64.b64decode(decoded["x5c"][0]))
    marker = bytes.fromhex("a003020102")  # [0] EXPLICIT version v3, just before the serial INTEGER.
    serial_at = der.index(marker) + len(marker) + 2
    der[serial_at] |= 0x80
    decoded["x5c"] = [base64.b64encode(bytes(der)).decode()]
    return ".".join((_b64(json.dumps(decoded).encode()), payload, signature))


def _unknown_key_type(token: str) -> str:
    """The same token with x5c[0]'s public key algorithm changed to an OID nobody knows (0.3.101.112)."""
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    der = base64.b64decode(decoded["x5c"][0])
    oid = bytes.fromhex("06032b6570")  # 1.3.101.112, Ed25519: signature algorithm, then the key's algorithm.
    at = der.index(oid, der.index(oid) + 1)
    der = der[:at] + bytes.fromhex("0603036570") + der[at + len(oid) :]
    decoded["x5c"] = [base64.b64encode(der).decode()]
    return ".".join((_b64(json.dumps(decoded).encode()), payload, signature))


def build() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ca_dir = root / "ca"
        issued = VERIFY_AT - dt.timedelta(days=1)
        authority.create_ca(ca_dir, "Hotline Network Test-Vector CA", days=3650 * 3, now=issued)
        nl = issue_dev_identity(ca_dir, root, "hotline-nl", countries=("NL",), days=3650 * 3, now=issued)
        de = issue_dev_identity(ca_dir, root, "hotline-de", countries=("DE", "AT"), days=3650 * 3, now=issued)
        exchange = issue_dev_identity(ca_dir, root, "exchange", role="exchange", days=3650 * 3, now=issued)
        revoked = issue_dev_identity(ca_dir, root / "revoked", "hotline-nl", countries=("NL",), days=3650, now=issued)
        short = issue_dev_identity(
            ca_dir, root / "short", "hotline-nl", countries=("NL",), days=1, now=VERIFY_AT - dt.timedelta(days=30)
        )
        other_dir = root / "other-ca"
        authority.create_ca(other_dir, "Some Other CA", now=issued)
        other = issue_dev_identity(other_dir, root / "other", "hotline-nl", countries=("NL",), days=3650, now=issued)
        superseded = issue_dev_identity(
            ca_dir, root / "superseded", "hotline-nl", countries=("NL",), days=3650, now=issued
        )
        serial = x509.load_pem_x509_certificate(revoked.cert.read_bytes()).serial_number
        authority.revoke(ca_dir, serial, reason="keyCompromise", now=issued + dt.timedelta(hours=1))
        older_crl = authority.publish_crl(ca_dir, days=3650 * 3, now=issued + dt.timedelta(hours=1))
        # Rotated away from two minutes before the verifier's clock: documents it signed before then are
        # still good when relayed, but no hop may accept a new document from it.
        superseded_at = VERIFY_AT - dt.timedelta(minutes=2)
        superseded_serial = x509.load_pem_x509_certificate(superseded.cert.read_bytes()).serial_number
        authority.revoke(ca_dir, superseded_serial, reason="superseded", now=superseded_at)
        crl = authority.publish_crl(ca_dir, days=3650 * 3, now=superseded_at)

        signers = {
            name: Signer.from_files(identity.key, identity.cert)
            for name, identity in {
                "nl": nl,
                "de": de,
                "exchange": exchange,
                "revoked": revoked,
                "short": short,
                "other": other,
                "superseded": superseded,
            }.items()
        }
        url = "http://Example.COM/gallery/../album/1.html#top"
        at = VERIFY_AT - dt.timedelta(minutes=1)
        stamp = at.isoformat().replace("+00:00", "Z")
        report = signers["nl"].claims(
            "exchange",
            now=at,
            jti=CASE_ID,
            header={
                "url_fingerprint": url_fingerprint(url),
                "content_hashes": [{"alg": "sha256", "value": "ab" * 32}],
                "hosting_country": "DE",
                "legal_status": "baseline",
                "priority": "urgent",
                "confirmed_at": stamp,
            },
            body={"url": url, "media_type": "image", "site_type": "image_host"},
        )
        report_token = signers["nl"].sign_compact("hotline.report.v1", report)
        receipt = signers["de"].claims(
            "hotline-nl", now=at, jti="0d6e8f7a-1b2c-4d3e-8f9a-0b1c2d3e4f50", report_id=CASE_ID, received_at=stamp
        )
        status = signers["de"].claims(
            "exchange",
            now=at,
            jti="1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d",
            case_id=CASE_ID,
            status="removed",
            at=stamp,
        )
        note = signers["de"].claims(
            "hotline-nl",
            now=at,
            jti="5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b",
            case_id=CASE_ID,
            status_id=status["jti"],
            note="host confirmed removal",
        )
        duplicate = signers["exchange"].claims(
            "hotline-fr",
            now=at,
            jti="2b3c4d5e-6f7a-4b9c-8d1e-2f3a4b5c6d7e",
            report_id="3c4d5e6f-7a8b-4c0d-9e2f-3a4b5c6d7e8f",
            case_id=CASE_ID,
            matched_on=["url"],
            destination="hotline-de",
            first_reported_at=stamp,
        )
        refusal = signers["exchange"].claims(
            "hotline-nl",
            now=at,
            jti="6f7a8b9c-0d1e-4f2a-9b3c-4d5e6f7a8b9c",
            report_id=CASE_ID,
            error="fingerprint_mismatch",
            message="the report did not reach a hotline that accepted it; check the URL and resubmit",
            at=stamp,
        )
        material = signers["exchange"].claims(
            "hotline-de",
            now=at,
            jti="7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d",
            case_id="8b9c0d1e-2f3a-4b4c-9d5e-6f7a8b9c0d1e",
            links=[
                {
                    "case_id": CASE_ID,
                    "matched_on": ["sha256"],
                    "legal_status": "baseline",
                    "hosting_country": "DE",
                    "first_reported_at": stamp,
                    "status": "removed",
                }
            ],
        )
        moved = signers["de"].claims(
            "exchange",
            now=at,
            jti="3e4f5a6b-7c8d-4e9f-8a0b-1c2d3e4f5a6b",
            case_id=CASE_ID,
            status="moved",
            moved_to="FR",
            at=stamp,
        )
        reroute = signers["exchange"].claims(
            "hotline-nl",
            now=at,
            jti="4f5a6b7c-8d9e-4f0a-9b1c-2d3e4f5a6b7c",
            case_id=CASE_ID,
            hosting_country="FR",
            destination="hotline-fr",
            previous_destination="hotline-de",
            first_reported_at=stamp,
            resend=True,
        )
        resent = signers["nl"].claims(
            "exchange",
            now=at,
            jti="5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
            header={**report["header"], "hosting_country": "FR", "case_id": CASE_ID},
            body=report["body"],
        )
        poisoned = signers["nl"].claims(
            "exchange",
            now=at,
            jti="9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f",
            header={**report["header"], "url_fingerprint": url_fingerprint("http://someone-elses-case.example/")},
            body={"url": "http://decoy.example/"},
        )
        back_dated = {**report, "iat": int((superseded_at - dt.timedelta(hours=1)).timestamp())}
        just_before_rotation = {**report, "iat": int((superseded_at - dt.timedelta(minutes=1)).timestamp())}
        transaction = signers["nl"].claims(
            "exchange", now=VERIFY_AT, jti="4d5e6f7a-8b9c-4d1e-8f3a-4b5c6d7e8f9a", documents=[report_token]
        )

        def vector(
            name: str,
            description: str,
            typ: str,
            token: str,
            *,
            error: str | None = None,
            claims: dict[str, Any] | None = None,
            fresh: bool = False,
            first_hop: bool = False,
            at_destination: bool = False,
        ) -> dict[str, Any]:
            expect: dict[str, Any] = {"error": error} if error else {"valid": True, "claims": claims}
            return {
                "name": name,
                "description": description,
                "typ": typ,
                "fresh": fresh,
                "first_hop": first_hop,
                "at_destination": at_destination,
                "token": token,
                "expect": expect,
            }

        flattened = signers["nl"].sign_flattened("hotline.transaction.v1", transaction)
        transaction_token = ".".join((flattened["protected"], flattened["payload"], flattened["signature"]))
        vectors = [
            vector(
                "report-valid",
                "A report signed by its origin; the URL fingerprint matches body.url.",
                "hotline.report.v1",
                report_token,
                claims=report,
            ),
            vector(
                "receipt-valid",
                "The destination's receipt, addressed to the origin.",
                "hotline.receipt.v1",
                signers["de"].sign_compact("hotline.receipt.v1", receipt),
                claims=receipt,
            ),
            vector(
                "status-valid",
                "A status update by the destination, routed by the exchange (a code and a time, no free text).",
                "hotline.status.v1",
                signers["de"].sign_compact("hotline.status.v1", status),
                claims=status,
            ),
            vector(
                "note-valid",
                "The destination's free-text note on that status, for the case's origin alone.",
                "hotline.note.v1",
                signers["de"].sign_compact("hotline.note.v1", note),
                claims=note,
            ),
            vector(
                "duplicate-valid",
                "A duplicate notice signed by the exchange, after the destination confirmed the later report.",
                "hotline.duplicate.v1",
                signers["exchange"].sign_compact("hotline.duplicate.v1", duplicate),
                claims=duplicate,
            ),
            vector(
                "refusal-valid",
                "The exchange tells an origin that no hotline accepted its report.",
                "hotline.refusal.v1",
                signers["exchange"].sign_compact("hotline.refusal.v1", refusal),
                claims=refusal,
            ),
            vector(
                "material-valid",
                "The exchange tells a destination that a new case's content is already known elsewhere.",
                "hotline.material.v1",
                signers["exchange"].sign_compact("hotline.material.v1", material),
                claims=material,
            ),
            vector(
                "status-moved",
                "The destination found the content hosted in another country now: the exchange re-routes the case.",
                "hotline.status.v1",
                signers["de"].sign_compact("hotline.status.v1", moved),
                claims=moved,
            ),
            vector(
                "reroute-valid",
                "The exchange tells the case's origin where the case went and asks it to send its report again.",
                "hotline.reroute.v1",
                signers["exchange"].sign_compact("hotline.reroute.v1", reroute),
                claims=reroute,
            ),
            vector(
                "report-resent-after-move",
                "The origin's report sent again after a move: a new id, the case's id in the header, the first "
                "report's confirmed_at, the new hosting country.",
                "hotline.report.v1",
                signers["nl"].sign_compact("hotline.report.v1", resent),
                claims=resent,
            ),
            vector(
                "report-poisoned-header",
                "Correctly signed, but the routing header fingerprints another URL than body.url: the exchange "
                "cannot tell, the destination must refuse it.",
                "hotline.report.v1",
                signers["nl"].sign_compact("hotline.report.v1", poisoned),
                error="fingerprint_mismatch",
                at_destination=True,
            ),
            vector(
                "report-back-dated-first-hop",
                "Signed with a key revoked as superseded, issued-at back-dated before the revocation: refused "
                "where its author hands it in (not fresh).",
                "hotline.report.v1",
                signers["superseded"].sign_compact("hotline.report.v1", back_dated),
                error="clock_skew",
                first_hop=True,
            ),
            vector(
                "report-superseded-key-first-hop",
                "Signed one minute before its key was superseded (fresh): refused where its author hands it "
                "in, because the key is revoked now.",
                "hotline.report.v1",
                signers["superseded"].sign_compact("hotline.report.v1", just_before_rotation),
                error="certificate_revoked",
                first_hop=True,
            ),
            vector(
                "report-superseded-key-relayed",
                "The same document relayed later: it was signed before the rotation, so it still verifies.",
                "hotline.report.v1",
                signers["superseded"].sign_compact("hotline.report.v1", just_before_rotation),
                claims=just_before_rotation,
            ),
            vector(
                "report-nested-json",
                "A correctly signed payload of 12,000 unclosed arrays (it fits in a transaction): malformed JSON, "
                "never a crash.",
                "hotline.report.v1",
                _sign_raw(signers["nl"], "hotline.report.v1", b"[" * 12_000),
                error="malformed_json",
            ),
            vector(
                "transaction-valid",
                "A transaction carrying the report (sent as flattened JSON on the wire).",
                "hotline.transaction.v1",
                transaction_token,
                claims=transaction,
                fresh=True,
            ),
            vector(
                "report-tampered-payload",
                "hosting_country changed after signing.",
                "hotline.report.v1",
                _with_payload(
                    report_token, canonical_json({**report, "header": {**report["header"], "hosting_country": "FR"}})
                ),
                error="bad_signature",
            ),
            vector(
                "report-signed-by-other-member",
                "iss says hotline-nl; signed with hotline-de's certificate and key.",
                "hotline.report.v1",
                signers["de"].sign_compact("hotline.report.v1", report),
                error="issuer_mismatch",
            ),
            vector(
                "report-foreign-signature",
                "hotline-nl's certificate in x5c; signature made with hotline-de's key.",
                "hotline.report.v1",
                _with_signature(report_token, signers["de"].sign_compact("hotline.report.v1", report)),
                error="bad_signature",
            ),
            vector(
                "report-alg-eddsa",
                "The deprecated polymorphic alg name.",
                "hotline.report.v1",
                _with_header(report_token, alg="EdDSA"),
                error="unsupported_algorithm",
            ),
            vector(
                "report-alg-none",
                "Unsigned.",
                "hotline.report.v1",
                _with_header(report_token, alg="none"),
                error="unsupported_algorithm",
            ),
            vector(
                "report-kid-mismatch",
                "kid is not the thumbprint of x5c[0].",
                "hotline.report.v1",
                _with_header(report_token, kid="A" * 43),
                error="malformed_message",
            ),
            vector(
                "report-x5c-negative-serial",
                "x5c[0] has a negative serial number (RFC 5280 forbids it).",
                "hotline.report.v1",
                _negative_serial(report_token),
                error="malformed_message",
            ),
            vector(
                "report-x5c-unknown-key-type",
                "x5c[0]'s public key has an algorithm OID no library knows.",
                "hotline.report.v1",
                _unknown_key_type(report_token),
                error="malformed_message",
            ),
            vector(
                "report-x5c-unknown-version",
                "x5c[0] claims X.509 version 15.",
                "hotline.report.v1",
                with_unknown_x509_version(report_token),
                error="malformed_message",
            ),
            vector(
                "report-small-order-key",
                "x5c[0], issued by the network CA, holds a key of small order, and the signature (R = the "
                "neutral point, S = 0) verifies for every message under a lenient verifier such as OpenSSL's.",
                "hotline.report.v1",
                universally_signed(
                    small_order_certificate(ca_dir, "hotline-nl", ("NL",), issued), "hotline.report.v1", report
                ),
                error="bad_signature",
            ),
            vector(
                "report-other-ca",
                "Signed by a hotline-nl certificate from another CA.",
                "hotline.report.v1",
                signers["other"].sign_compact("hotline.report.v1", report),
                error="certificate_untrusted",
            ),
            vector(
                "report-revoked-certificate",
                "Signed with a certificate on the CRL.",
                "hotline.report.v1",
                signers["revoked"].sign_compact("hotline.report.v1", report),
                error="certificate_revoked",
            ),
            vector(
                "report-certificate-expired-at-iat",
                "The certificate had expired when the report was issued.",
                "hotline.report.v1",
                signers["short"].sign_compact("hotline.report.v1", report),
                error="certificate_expired",
            ),
            vector(
                "report-schema-invalid",
                "hosting_country is not an ISO code.",
                "hotline.report.v1",
                signers["nl"].sign_compact(
                    "hotline.report.v1", {**report, "header": {**report["header"], "hosting_country": "Germany"}}
                ),
                error="schema_invalid",
            ),
            vector(
                "report-payload-not-json",
                "A correctly signed payload that is not JSON.",
                "hotline.report.v1",
                _sign_raw(signers["nl"], "hotline.report.v1", b"{not json"),
                error="malformed_json",
            ),
            vector(
                "report-wrong-type",
                "A receipt presented where a report is expected.",
                "hotline.report.v1",
                signers["de"].sign_compact("hotline.receipt.v1", receipt),
                error="wrong_message_type",
            ),
            vector(
                "transaction-stale",
                "A transaction issued an hour before the verifier's clock.",
                "hotline.transaction.v1",
                _flat_token(
                    signers["nl"], {**transaction, "iat": int((VERIFY_AT - dt.timedelta(hours=1)).timestamp())}
                ),
                error="clock_skew",
                fresh=True,
            ),
        ]
        return {
            "description": __doc__.strip().splitlines()[0],
            "verify_at": VERIFY_AT.isoformat().replace("+00:00", "Z"),
            "clock_skew_seconds": 300,
            "ca_cert": (ca_dir / "ca.pem").read_text(),
            "crl": crl.decode(),
            "older_crl": older_crl.decode(),
            "vectors": vectors,
        }


def _sign_raw(signer: Signer, typ: str, payload: bytes) -> str:
    from joserfc import jws

    from federation.signing import ALGORITHM, REGISTRY

    return jws.serialize_compact(signer.header(typ), payload, signer._key, algorithms=[ALGORITHM], registry=REGISTRY)


def _flat_token(signer: Signer, claims: dict[str, Any]) -> str:
    flattened = signer.sign_flattened("hotline.transaction.v1", claims)
    return ".".join((flattened["protected"], flattened["payload"], flattened["signature"]))


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=2) + "\n")
    print(f"wrote {OUT}")
