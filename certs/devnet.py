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
    days: int = 30,
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
    authority.create_ca(ca_dir, "Hotline Network Dev CA (throwaway)", days=30)
    identities = {EXCHANGE_ID: issue_dev_identity(ca_dir, out_dir, EXCHANGE_ID, role="exchange")}
    for member in members:
        identities[member.member_id] = issue_dev_identity(
            ca_dir, out_dir, member.member_id, role=member.role, countries=member.countries
        )
    return identities
