"""``hotline-pki``: the network CA's commands (``hotline-pki --help``)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from cryptography import x509

from certs import authority
from certs.devnet import write_dev_network
from certs.identity import identity_from_certificate
from federation.errors import ProtocolError


def _fail(exc: ProtocolError) -> click.ClickException:
    return click.ClickException(exc.message)


@click.group()
def main() -> None:
    """Manage the hotline network's certificate authority and member certificates."""


@main.command("init-ca")
@click.option("--dir", "directory", type=click.Path(path_type=Path), required=True, help="CA directory to create.")
@click.option("--name", default="Hotline Network CA", show_default=True)
@click.option("--days", default=3650, show_default=True)
def init_ca(directory: Path, name: str, days: int) -> None:
    """Create a network CA (key, certificate, empty revocation list)."""
    try:
        authority.create_ca(directory, name, days=days)
    except ProtocolError as exc:
        raise _fail(exc) from exc
    click.echo(f"CA created in {directory}: publish {directory / authority.CA_CERT} and {directory / authority.CRL}")


@main.command("new-key")
@click.option("--member-id", required=True)
@click.option("--key", "key_path", type=click.Path(path_type=Path), required=True, help="Where to write the key.")
@click.option("--csr", "csr_path", type=click.Path(path_type=Path), required=True, help="Where to write the CSR.")
def new_key(member_id: str, key_path: Path, csr_path: Path) -> None:
    """Make a private key and a certificate signing request (run by the member; the key stays with it)."""
    pair = authority.new_key_and_csr(member_id)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    authority.write_private_key(key_path, pair.key_pem)
    csr_path.write_bytes(pair.csr_pem)
    click.echo(f"key {key_path} (keep it secret), CSR {csr_path} (send it to the secretariat)")


@main.command("issue")
@click.option("--dir", "directory", type=click.Path(path_type=Path), required=True, help="CA directory.")
@click.option("--csr", "csr_path", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--member-id", required=True)
@click.option("--role", type=click.Choice(["member", "exchange"]), default="member", show_default=True)
@click.option("--country", "countries", multiple=True, help="Country the member covers (repeat).")
@click.option("--dns", "dns_names", multiple=True, help="DNS name of the member's endpoint (repeat).")
@click.option("--ip", "ip_addresses", multiple=True, help="IP address of the member's endpoint (repeat).")
@click.option("--days", default=365, show_default=True)
@click.option("--out", "out_path", type=click.Path(path_type=Path), required=True)
def issue(
    directory: Path,
    csr_path: Path,
    member_id: str,
    role: str,
    countries: tuple[str, ...],
    dns_names: tuple[str, ...],
    ip_addresses: tuple[str, ...],
    days: int,
    out_path: Path,
) -> None:
    """Issue a certificate binding a member id, role and countries to the key in a CSR."""
    try:
        pem = authority.issue_certificate(
            directory,
            csr_path.read_bytes(),
            member_id=member_id,
            role=role,
            countries=[country.upper() for country in countries],
            dns_names=dns_names,
            ip_addresses=ip_addresses,
            days=days,
        )
    except ProtocolError as exc:
        raise _fail(exc) from exc
    out_path.write_bytes(pem)
    serial = x509.load_pem_x509_certificate(pem).serial_number
    click.echo(f"issued {out_path} for {member_id} (serial {serial})")


@main.command("revoke")
@click.option("--dir", "directory", type=click.Path(path_type=Path), required=True, help="CA directory.")
@click.option("--cert", "cert_path", type=click.Path(exists=True, path_type=Path), help="Certificate to revoke.")
@click.option("--serial", type=int, help="Serial number to revoke (instead of --cert).")
@click.option("--reason", default="unspecified", show_default=True, help="e.g. keyCompromise, superseded.")
def revoke(directory: Path, cert_path: Path | None, serial: int | None, reason: str) -> None:
    """Revoke a certificate and publish a fresh revocation list."""
    if (cert_path is None) == (serial is None):
        raise click.UsageError("give exactly one of --cert or --serial")
    if cert_path is not None:
        serial = x509.load_pem_x509_certificate(cert_path.read_bytes()).serial_number
    assert serial is not None
    try:
        authority.revoke(directory, serial, reason=reason)
    except ProtocolError as exc:
        raise _fail(exc) from exc
    click.echo(f"revoked {serial}; published {directory / authority.CRL}")


@main.command("crl")
@click.option("--dir", "directory", type=click.Path(path_type=Path), required=True, help="CA directory.")
@click.option("--days", default=7, show_default=True, help="Days until the next update is due.")
def crl(directory: Path, days: int) -> None:
    """Sign and publish the revocation list again (do this before next-update, e.g. daily)."""
    authority.publish_crl(directory, days=days)
    click.echo(f"published {directory / authority.CRL}")


@main.command("show")
@click.argument("cert_path", type=click.Path(exists=True, path_type=Path))
def show(cert_path: Path) -> None:
    """Print the network identity a certificate asserts."""
    try:
        identity = identity_from_certificate(x509.load_pem_x509_certificate(cert_path.read_bytes()))
    except (ProtocolError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        json.dumps(
            {
                "member_id": identity.member_id,
                "role": identity.role,
                "countries": list(identity.countries),
                "serial": str(identity.serial),
                "not_before": identity.not_before.isoformat(),
                "not_after": identity.not_after.isoformat(),
                "kid": identity.thumbprint,
            },
            indent=2,
        )
    )


@main.command("dev-network")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("var/demo/pki"), show_default=True)
def dev_network(out_dir: Path) -> None:
    """Generate a throwaway PKI for the demo network (never use it in production)."""
    write_dev_network(out_dir)
    click.echo(f"dev PKI written to {out_dir}")
