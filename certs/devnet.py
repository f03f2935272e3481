"""A throwaway PKI for the demo network and the tests: a CA, the exchange, and the member hotlines.

Everything is generated at run time into an ignored folder (``var/``); no key ever enters git.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from certs import authority

EXCHANGE_ID = "exchange"


@dataclass(frozen=True)
class DevMember:
    member_id: str
    name: str
    countries: tuple[str, ...]
    fallback: bool = False
    role: str = "member"
    inbound: str = "push"
    """How the member receives: "push" (it runs an inbound endpoint) or "pull" (it polls the mailbox)."""


DEV_MEMBERS = (
    DevMember("hotline-nl", "Hotline Netherlands (dev)", ("NL",)),
    DevMember("hotline-de", "Hotline Germany (dev)", ("DE", "AT")),
    DevMember(
        "hotline-fr", "Hotline France (dev, no inbound port: collects from the mailbox)", ("FR", "LU"), inbound="pull"
    ),
    DevMember("secretariat", "Network secretariat, fallback (dev)", (), fallback=True),
)


@dataclass(frozen=True)
class IssuedIdentity:
    member_id: str
    key: Path
    cert: Path


def issue_dev_identity(
    ca_dir: Path,
    out_dir: Path,
    member_id: str,
    *,
    role: str = "member",
    countries: tuple[str, ...] = (),
    days: int = 90,
    **kwargs: object,
) -> IssuedIdentity:
    """Make a key and a certificate for ``member_id`` in ``out_dir/<member_id>/`` (localhost endpoint)."""
    directory = out_dir / member_id
    directory.mkdir(parents=True, exist_ok=True)
    pair = authority.new_key_and_csr(member_id)
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.unlink(missing_ok=True)
    authority.write_private_key(key_path, pair.key_pem)
    cert_path.write_bytes(
        authority.issue_certificate(
            ca_dir,
            pair.csr_pem,
            member_id=member_id,
            role=role,
            countries=countries,
            dns_names=("localhost",),
            ip_addresses=("127.0.0.1",),
            days=days,
            **kwargs,  # type: ignore[arg-type]
        )
    )
    return IssuedIdentity(member_id, key_path, cert_path)


def write_dev_network(out_dir: Path, members: tuple[DevMember, ...] = DEV_MEMBERS) -> dict[str, IssuedIdentity]:
    """Create a fresh CA and identities for the exchange and ``members`` under ``out_dir`` (replacing it)."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    ca_dir = out_dir / "ca"
    authority.create_ca(ca_dir, "Hotline Network Dev CA (throwaway)", days=365)
    identities = {EXCHANGE_ID: issue_dev_identity(ca_dir, out_dir, EXCHANGE_ID, role="exchange")}
    for member in members:
        identities[member.member_id] = issue_dev_identity(
            ca_dir, out_dir, member.member_id, role=member.role, countries=member.countries
        )
    return identities


@dataclass(frozen=True)
class WebTLS:
    """A throwaway HTTPS identity for the consoles and public pages on 127.0.0.1 (demo and tests only)."""

    ca: Path
    cert: Path
    key: Path


def write_web_tls(out_dir: Path) -> WebTLS:
    """Make a web CA and one ECDSA P-256 certificate for ``localhost`` and 127.0.0.1 under ``out_dir``.

    The people's surfaces are served to browsers, which do not accept Ed25519 server certificates, so
    they get an ordinary ECDSA certificate from a CA of their own (in production: the organisation's
    usual certificate on the reverse proxy). Trust ``ca.pem`` in a browser to avoid the warning.
    """
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    out_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hotline dev web CA (throwaway)")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = WebTLS(ca=out_dir / "ca.pem", cert=out_dir / "cert.pem", key=out_dir / "key.pem")
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.unlink(missing_ok=True)
    authority.write_private_key(
        paths.key,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    return paths
