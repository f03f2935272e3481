"""The network CA: identities bound by the CA (not the CSR), revocation lists, standard tooling."""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from certs import authority
from certs.cli import main as pki_cli
from certs.identity import CertificateIdentityError, identity_from_certificate
from exchange.members.certificates import CertificateDesk, CertificateInputError
from tests.forgery import small_order_csr


def test_cli_makes_a_ca_issues_from_a_csr_and_revokes(tmp_path: Path) -> None:
    runner = CliRunner()
    ca = tmp_path / "ca"
    assert runner.invoke(pki_cli, ["init-ca", "--dir", str(ca)]).exit_code == 0
    result = runner.invoke(
        pki_cli,
        ["new-key", "--member-id", "hotline-be", "--key", str(tmp_path / "be.key"), "--csr", str(tmp_path / "be.csr")],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "be.key").stat().st_mode & 0o777 == 0o600
    result = runner.invoke(
        pki_cli,
        [
            "issue",
            "--dir",
            str(ca),
            "--csr",
            str(tmp_path / "be.csr"),
            "--member-id",
            "hotline-be",
            "--country",
            "be",
            "--country",
            "LU",
            "--dns",
            "be.example",
            "--out",
            str(tmp_path / "be.pem"),
        ],
    )
    assert result.exit_code == 0, result.output
    identity = identity_from_certificate(x509.load_pem_x509_certificate((tmp_path / "be.pem").read_bytes()))
    assert (identity.member_id, identity.role, identity.countries) == ("hotline-be", "member", ("BE", "LU"))
    shown = runner.invoke(pki_cli, ["show", str(tmp_path / "be.pem")])
    assert '"member_id": "hotline-be"' in shown.output

    openssl = subprocess.run(
        ["openssl", "verify", "-CAfile", str(ca / "ca.pem"), str(tmp_path / "be.pem")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert openssl.returncode == 0, openssl.stderr
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-text", "-in", str(tmp_path / "be.pem")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "URI:urn:hotline-net:member:hotline-be" in text and "URI:urn:hotline-net:country:LU" in text

    assert (
        runner.invoke(
            pki_cli, ["revoke", "--dir", str(ca), "--cert", str(tmp_path / "be.pem"), "--reason", "keyCompromise"]
        ).exit_code
        == 0
    )
    crl = x509.load_pem_x509_crl((ca / "crl.pem").read_bytes())
    serial = identity.serial
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    listed = subprocess.run(
        ["openssl", "crl", "-noout", "-text", "-in", str(ca / "crl.pem")], capture_output=True, text=True, check=True
    ).stdout
    assert "Key Compromise" in listed
    assert runner.invoke(pki_cli, ["init-ca", "--dir", str(ca)]).exit_code != 0  # Never replaces a CA key.


def test_the_ca_decides_the_identity_not_the_csr(tmp_path: Path) -> None:
    authority.create_ca(tmp_path / "ca", "CA")
    key = ed25519.Ed25519PrivateKey.generate()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "exchange")]))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier("urn:hotline-net:role:exchange")]),
            critical=False,
        )
        .sign(key, None)
    )
    pem = authority.issue_certificate(
        tmp_path / "ca", csr.public_bytes(serialization.Encoding.PEM), member_id="hotline-be", countries=["BE"]
    )
    identity = identity_from_certificate(x509.load_pem_x509_certificate(pem))
    assert (identity.member_id, identity.role) == ("hotline-be", "member")


@pytest.mark.parametrize("member_id, countries", [("Bad_ID", ["BE"]), ("hotline-be", ["Belgium"])])
def test_malformed_identities_are_refused(tmp_path: Path, member_id: str, countries: list[str]) -> None:
    authority.create_ca(tmp_path / "ca", "CA")
    pair = authority.new_key_and_csr("x")
    with pytest.raises(CertificateIdentityError):
        authority.issue_certificate(tmp_path / "ca", pair.csr_pem, member_id=member_id, countries=countries)


def test_only_ed25519_keys_are_certified(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    authority.create_ca(tmp_path / "ca", "CA")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(authority.AuthorityError, match="Ed25519"):
        authority.issue_certificate(
            tmp_path / "ca", csr.public_bytes(serialization.Encoding.PEM), member_id="hotline-be"
        )


def _request_der() -> bytes:
    """A fresh, well-formed signing request as DER, for a test to break."""
    pem = authority.new_key_and_csr("hotline-be").csr_pem
    return x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)


def _pem(der: bytes, label: str = "CERTIFICATE REQUEST") -> bytes:
    return f"-----BEGIN {label}-----\n".encode() + base64.encodebytes(der) + f"-----END {label}-----\n".encode()


def _desk(tmp_path: Path) -> CertificateDesk:
    """The secretariat console's certificate desk, for the checks it makes before touching the database."""
    now = dt.datetime.now(dt.UTC)
    return CertificateDesk(session=None, ca_dir=tmp_path / "ca", actor="test", now=now)  # type: ignore[arg-type]


def test_a_request_of_an_unknown_version_is_refused_with_the_usual_error(tmp_path: Path) -> None:
    """cryptography reports a CSR version other than 1 with an exception that is not a ValueError."""
    authority.create_ca(tmp_path / "ca", "CA")
    request = _request_der()
    version = request.index(bytes.fromhex("020100"))  # CertificationRequestInfo's INTEGER 0 (version 1)
    bad = request[:version] + bytes.fromhex("020105") + request[version + 3 :]
    with pytest.raises(x509.InvalidVersion):
        x509.load_der_x509_csr(bad)
    pem = _pem(bad)
    with pytest.raises(authority.AuthorityError, match="not a PEM certificate signing request"):
        authority.issue_certificate(tmp_path / "ca", pem, member_id="hotline-be")
    # The secretariat's console checks a pasted request first, with the same sentence as for any non-request.
    with pytest.raises(CertificateInputError, match="that is not a certificate signing request"):
        _desk(tmp_path).check_request(pem)


def test_a_revocation_list_of_an_unknown_version_is_not_a_revocation_list(tmp_path: Path) -> None:
    authority.create_ca(tmp_path / "ca", "CA")
    crl = x509.load_pem_x509_crl((tmp_path / "ca" / authority.CRL).read_bytes())
    der = crl.public_bytes(serialization.Encoding.DER)
    version = der.index(bytes.fromhex("020101"))  # TBSCertList's INTEGER 1 (version 2)
    bad = der[:version] + bytes.fromhex("020107") + der[version + 3 :]
    pem = _pem(bad, "X509 CRL")
    with pytest.raises(authority.AuthorityError, match="not a PEM certificate revocation list"):
        authority.crl_number(pem)


def test_a_key_of_small_order_is_not_certified_though_openssl_accepts_its_request(tmp_path: Path) -> None:
    """With a small-order key, one signature verifies under OpenSSL for every message: a certificate for
    it would let anyone speak for its member. The CA refuses the key (libsodium's point check)."""
    authority.create_ca(tmp_path / "ca", "CA")
    pem = small_order_csr("hotline-be")
    assert x509.load_pem_x509_csr(pem).is_signature_valid  # OpenSSL: the forged request "verifies".
    with pytest.raises(authority.AuthorityError, match="small order"):
        authority.issue_certificate(tmp_path / "ca", pem, member_id="hotline-be")


def test_a_request_for_a_key_of_an_unknown_type_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    """cryptography reads a request's key lazily and reports an unknown key type with an exception that
    is not a ValueError; the console's check and the CA's issuing both let it out before."""
    authority.create_ca(tmp_path / "ca", "CA")
    der = _request_der()
    ed25519_oid = bytes.fromhex("06032b6570")  # 1.3.101.112: the key's algorithm first, then the signature's.
    bad = der.replace(ed25519_oid, bytes.fromhex("06032b6500"), 1)  # 1.3.101.0, which nobody knows
    pem = _pem(bad)
    with pytest.raises(authority.AuthorityError, match="unknown type or malformed"):
        authority.issue_certificate(tmp_path / "ca", pem, member_id="hotline-be")
    desk = _desk(tmp_path)
    with pytest.raises(CertificateInputError, match="unknown type or malformed"):
        desk.check_request(pem)
    with pytest.raises(CertificateInputError, match="small order"):  # What the CA refuses, said up front.
        desk.check_request(small_order_csr("hotline-be"))
