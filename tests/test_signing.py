"""Signing and verification with real keys and a real CA (no network)."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certs import authority
from certs.devnet import write_dev_network
from certs.identity import CertificateIdentityError
from federation.errors import ProtocolError
from federation.signing import (
    BadSignatureVerificationError,
    MalformedMessageError,
    Signer,
    SigningKeyError,
    new_message_id,
    verify_jws,
)
from federation.trust import TrustStore, TrustStoreError
from tests.forgery import UNIVERSAL_SIGNATURE, small_order_certificate, universally_signed, with_unknown_x509_version

SKEW = dt.timedelta(minutes=5)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("pki")
    identities = write_dev_network(root)
    return {"root": root, "ids": identities, "trust": TrustStore(root / "ca" / "ca.pem", root / "ca" / "crl.pem")}


def signer(pki: dict[str, Any], member: str) -> Signer:
    identity = pki["ids"][member]
    return Signer.from_files(identity.key, identity.cert)


notes = st.text(min_size=1, max_size=300)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(note=notes)
def test_sign_then_verify_round_trips_any_content(pki: dict[str, Any], note: str) -> None:
    de = signer(pki, "hotline-de")
    now = dt.datetime.now(dt.UTC)
    claims = de.claims(
        "hotline-nl",
        now=now,
        case_id="6f1c2a9e-4b1d-4c8a-9f3e-2d7b5a1c0e42",
        status_id="0d6e8f7a-1b2c-4d3e-8f9a-0b1c2d3e4f50",
        note=note,
    )
    token = de.sign_compact("hotline.note.v1", claims)
    verified = verify_jws(token, expected_typ="hotline.note.v1", trust=pki["trust"], now=now, clock_skew=SKEW)
    assert verified.claims == claims and verified.author.member_id == "hotline-de"
    assert verified.author.countries == ("AT", "DE")


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    position=st.integers(min_value=0),
    replacement=st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
)
def test_any_single_character_change_fails_verification(pki: dict[str, Any], position: int, replacement: str) -> None:
    nl = signer(pki, "hotline-nl")
    now = dt.datetime.now(dt.UTC)
    token = nl.sign_compact("hotline.transaction.v1", nl.claims("exchange", now=now, documents=[]))
    index = position % len(token)
    if token[index] in ".=" or token[index] == replacement:
        return
    tampered = token[:index] + replacement + token[index + 1 :]
    if tampered == token:
        return
    try:
        verified = verify_jws(
            tampered, expected_typ="hotline.transaction.v1", trust=pki["trust"], now=now, clock_skew=SKEW
        )
    except ProtocolError:
        return
    # Base64url's last character can carry unused bits: a change there may decode to the same bytes.
    assert verified.claims == nl.claims("exchange", now=now, jti=verified.claims["jti"], documents=[])


def test_a_certificate_of_an_unknown_x509_version_is_refused_as_malformed(pki: dict[str, Any]) -> None:
    """Found by the test above: one changed character of x5c made the version 14, which cryptography
    reports with an exception that is not a ValueError; it escaped as a server error."""
    nl = signer(pki, "hotline-nl")
    now = dt.datetime.now(dt.UTC)
    token = nl.sign_compact("hotline.transaction.v1", nl.claims("exchange", now=now, documents=[]))
    with pytest.raises(MalformedMessageError, match="x5c"):
        verify_jws(
            with_unknown_x509_version(token),
            expected_typ="hotline.transaction.v1",
            trust=pki["trust"],
            now=now,
            clock_skew=SKEW,
        )


def test_a_universal_signature_of_a_small_order_key_verifies_nothing(pki: dict[str, Any]) -> None:
    """Were a certificate issued for a small-order key (the CA refuses such keys: tests/test_pki.py),
    OpenSSL would accept one signature on every message; libsodium, which verifies here, refuses it."""
    now = dt.datetime.now(dt.UTC)
    certificate = small_order_certificate(pki["root"] / "ca", "hotline-xx", ("XX",), now)
    claims = {"iss": "hotline-xx", "aud": "exchange", "jti": str(uuid.uuid4()), "iat": int(now.timestamp())}
    token = universally_signed(certificate, "hotline.transaction.v1", {**claims, "documents": []})
    signing_input, _, _ = token.rpartition(".")
    public_key = certificate.public_key()
    assert isinstance(public_key, ed25519.Ed25519PublicKey)
    public_key.verify(UNIVERSAL_SIGNATURE, signing_input.encode())  # OpenSSL: no exception, it "verifies".
    with pytest.raises(BadSignatureVerificationError):
        verify_jws(token, expected_typ="hotline.transaction.v1", trust=pki["trust"], now=now, clock_skew=SKEW)
    # Nor does such a certificate name anyone (the same check guards a TLS peer's certificate).
    with pytest.raises(CertificateIdentityError, match="small order"):
        pki["trust"].verify_certificate(certificate, at=now)


def test_message_ids_are_version_7_uuids_carrying_the_millisecond_they_were_made() -> None:
    """Time-ordered (RFC 9562, version 7) and never ahead of the clock, however many are made at once:
    the uuid6 package's ids were 10 s ahead after 10,000 in 74 ms."""
    before = time.time_ns() // 1_000_000
    ids = [new_message_id() for _ in range(10_000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for text in (ids[0], ids[-1], *random.sample(ids, 200)):
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after
    time.sleep(0.002)
    assert new_message_id() > max(ids)  # A later millisecond sorts after every id of an earlier one.


def test_signer_refuses_a_key_that_is_not_its_certificates(pki: dict[str, Any]) -> None:
    ids = pki["ids"]
    with pytest.raises(SigningKeyError):
        Signer.from_files(ids["hotline-nl"].key, ids["hotline-de"].cert)


def test_trust_store_fails_closed_without_a_valid_crl(pki: dict[str, Any], tmp_path: Path) -> None:
    ca = pki["root"] / "ca" / "ca.pem"
    with pytest.raises(TrustStoreError):
        TrustStore(ca, tmp_path / "missing.pem")
    forged = tmp_path / "crl.pem"
    other = tmp_path / "other"

    authority.create_ca(other, "Other")
    forged.write_bytes((other / "crl.pem").read_bytes())
    with pytest.raises(TrustStoreError, match="not signed by the network CA"):
        TrustStore(ca, forged)


def test_revocation_takes_effect_without_restart(pki: dict[str, Any], tmp_path: Path) -> None:

    from certs import authority
    from certs.devnet import issue_dev_identity

    ca_dir = pki["root"] / "ca"
    identity = issue_dev_identity(ca_dir, tmp_path, "hotline-fr", countries=("FR",))
    trust = TrustStore(ca_dir / "ca.pem", ca_dir / "crl.pem")
    certificate = x509.load_pem_x509_certificate(identity.cert.read_bytes())
    now = dt.datetime.now(dt.UTC)
    assert trust.verify_certificate(certificate, at=now).member_id == "hotline-fr"
    before = now - dt.timedelta(minutes=1)
    authority.revoke(ca_dir, certificate.serial_number, reason="superseded", now=now)
    # Superseded (rotation): what it signed before the revocation still verifies; nothing after.
    assert trust.verify_certificate(certificate, at=before).member_id == "hotline-fr"
    with pytest.raises(ProtocolError) as raised:
        trust.verify_certificate(certificate, at=now + dt.timedelta(seconds=1))
    assert raised.value.code == "certificate_revoked"
    # Key compromise: nothing it ever signed is trusted.
    authority.revoke(ca_dir, certificate.serial_number, reason="keyCompromise", now=now)
    with pytest.raises(ProtocolError):
        trust.verify_certificate(certificate, at=before)


def test_one_transaction_is_judged_by_one_revocation_list(pki: dict[str, Any], tmp_path: Path) -> None:
    """Inside ``one_crl`` (an inbox checking a transaction and its documents) the list in force on entry
    stays in force, in that thread only; a list published meanwhile applies from the next transaction."""

    from certs import authority
    from certs.devnet import issue_dev_identity

    ca_dir = pki["root"] / "ca"
    identity = issue_dev_identity(ca_dir, tmp_path, "hotline-lu", countries=("LU",))
    trust = TrustStore(ca_dir / "ca.pem", ca_dir / "crl.pem")
    certificate = x509.load_pem_x509_certificate(identity.cert.read_bytes())
    now = dt.datetime.now(dt.UTC)
    elsewhere: list[BaseException | str] = []

    def other_thread() -> None:
        try:
            elsewhere.append(trust.verify_certificate(certificate, at=now).member_id)
        except ProtocolError as exc:
            elsewhere.append(exc)

    with trust.one_crl():
        assert trust.verify_certificate(certificate, at=now).member_id == "hotline-lu"
        authority.revoke(ca_dir, certificate.serial_number, reason="keyCompromise", now=now)
        with trust.one_crl():  # Nested: the outer transaction's list stays.
            assert trust.verify_certificate(certificate, at=now).member_id == "hotline-lu"
        assert not trust.is_revoked(certificate.serial_number, at=now)
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert isinstance(elsewhere[0], ProtocolError) and elsewhere[0].code == "certificate_revoked"
    with pytest.raises(ProtocolError, match="revoked"):
        trust.verify_certificate(certificate, at=now)
    with trust.one_crl(), pytest.raises(ProtocolError, match="revoked"):
        trust.verify_certificate(certificate, at=now)


def test_a_certificates_fixed_facts_are_read_once_and_its_checks_made_every_time(
    pki: dict[str, Any], tmp_path: Path
) -> None:
    """The trust store keeps what a certificate says (issuer's signature, dates, serial, identity) but checks
    the moment and the CRL on every call: a foreign certificate is refused each time, a known one expires."""

    from certs import authority
    from certs.devnet import issue_dev_identity

    ca_dir = pki["root"] / "ca"
    trust = TrustStore(ca_dir / "ca.pem", ca_dir / "crl.pem")
    authority.create_ca(tmp_path / "other-ca", "Some Other CA")
    foreign = issue_dev_identity(tmp_path / "other-ca", tmp_path / "foreign", "hotline-nl", countries=("NL",))
    own = issue_dev_identity(ca_dir, tmp_path / "own", "hotline-be", countries=("BE",))
    now = dt.datetime.now(dt.UTC)
    for path, code in ((foreign.cert, "certificate_untrusted"), (own.cert, None)):
        for _ in range(2):  # The second call answers from what the first read.
            certificate = x509.load_pem_x509_certificate(path.read_bytes())
            if code is None:
                assert trust.verify_certificate(certificate, at=now).member_id == "hotline-be"
                continue
            with pytest.raises(ProtocolError) as raised:
                trust.verify_certificate(certificate, at=now)
            assert raised.value.code == code
    certificate = x509.load_pem_x509_certificate(own.cert.read_bytes())
    for moment in (certificate.not_valid_after_utc + dt.timedelta(seconds=1), now - dt.timedelta(days=400)):
        with pytest.raises(ProtocolError) as raised:
            trust.verify_certificate(certificate, at=moment)
        assert raised.value.code == "certificate_expired"
    with pytest.raises(ProtocolError) as raised:  # The second moment (a first hop's receipt time) too.
        trust.verify_certificate(certificate, at=now, also_at=certificate.not_valid_after_utc + dt.timedelta(days=1))
    assert raised.value.code == "certificate_expired"
