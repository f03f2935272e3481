from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click
from flask import current_app
from sqlalchemy import select

from exchange.members.certificates import REASONS, CertificateDesk
from exchange.members.models import Member, MemberCertificate
from exchange.members.services import save_member, set_member_status
from federation.errors import ProtocolError
from federation.runtime import runtime
from service.cli import with_app

members_cli = click.Group("members", help="Manage the member directory.")


@members_cli.command("add")
@click.argument("member_id")
@click.option("--name", required=True, help="The hotline's name, as shown to other members.")
@click.option("--country", "countries", multiple=True, help="ISO country code the member covers (repeat).")
@click.option("--endpoint", default=None, help="https:// base URL where the member receives transactions.")
@click.option("--fallback", is_flag=True, help="Receive reports for countries no member covers.")
@with_app("worker")
def add_member(member_id: str, name: str, countries: tuple[str, ...], endpoint: str | None, fallback: bool) -> None:
    """Add or update a member."""
    rt = runtime()
    try:
        save_member(
            rt.db.session,
            member_id=member_id,
            name=name,
            countries=[c.upper() for c in countries],
            endpoint=endpoint,
            fallback=fallback,
            now=rt.clock(),
            actor="cli",
        )
    except ProtocolError as exc:
        raise click.ClickException(exc.message) from exc
    rt.db.session.commit()
    click.echo(f"member {member_id} saved")


@members_cli.command("suspend")
@click.argument("member_id")
@click.option("--reason", default=None, help="Why: kept in the audit trail and shown in the console.")
@with_app("worker")
def suspend_member(member_id: str, reason: str | None) -> None:
    """Stop routing to and accepting from a member (its queued messages wait)."""
    rt = runtime()
    try:
        set_member_status(rt.db.session, member_id, "suspended", actor="cli", reason=reason)
    except ProtocolError as exc:
        raise click.ClickException(exc.message) from exc
    rt.db.session.commit()
    click.echo(f"member {member_id} suspended")


@members_cli.command("reinstate")
@click.argument("member_id")
@with_app("worker")
def reinstate_member(member_id: str) -> None:
    """Route to and accept from a suspended member again (refused if another member covers its countries)."""
    rt = runtime()
    try:
        set_member_status(rt.db.session, member_id, "active", actor="cli")
    except ProtocolError as exc:
        raise click.ClickException(exc.message) from exc
    rt.db.session.commit()
    click.echo(f"member {member_id} reinstated")


@members_cli.command("list")
@with_app("worker")
def list_members() -> None:
    """Print the directory as JSON."""
    rt = runtime()
    rows = rt.db.session.scalars(select(Member).order_by(Member.id))
    click.echo(
        json.dumps(
            [
                {
                    "id": m.id,
                    "name": m.name,
                    "countries": m.countries,
                    "endpoint": m.endpoint,
                    "status": m.status,
                    "fallback": m.is_fallback,
                }
                for m in rows
            ],
            indent=2,
        )
    )


def _desk() -> CertificateDesk:
    rt = runtime()
    ca_dir = current_app.config["CA_DIR"]
    return CertificateDesk(rt.db.session, Path(ca_dir) if ca_dir else None, actor="cli", now=rt.clock())


@members_cli.command("onboard")
@click.argument("member_id")
@click.option("--name", required=True, help="The hotline's name, as shown to other members.")
@click.option("--country", "countries", multiple=True, help="ISO country code the member covers (repeat).")
@click.option("--contact", default=None, help="Email address for certificate expiry warnings.")
@click.option("--endpoint", default=None, help="https:// base URL where it receives transactions (none: pull).")
@click.option("--fallback", is_flag=True, help="Receive reports for countries no member covers.")
@click.option("--csr", "csr_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Certificate file to write.",
)
@click.option("--days", type=click.IntRange(1, 825), default=None, help="Validity (default CERTIFICATE_DAYS).")
@with_app("worker")
def onboard_member(
    member_id: str,
    name: str,
    countries: tuple[str, ...],
    contact: str | None,
    endpoint: str | None,
    fallback: bool,
    csr_path: Path,
    out_path: Path,
    days: int | None,
) -> None:
    """Add a member and issue its first certificate from its request (needs CA_DIR)."""
    try:
        record = _desk().onboard(
            member_id=member_id,
            name=name,
            countries=[c.upper() for c in countries],
            contact_email=contact,
            endpoint=endpoint,
            fallback=fallback,
            csr_pem=csr_path.read_bytes(),
            days=days or int(current_app.config["CERTIFICATE_DAYS"]),
        )
    except ProtocolError as exc:
        raise click.ClickException(exc.message) from exc
    runtime().db.session.commit()
    out_path.write_text(record.pem)
    click.echo(
        f"member {member_id} onboarded; certificate {record.serial} (until {record.not_after:%Y-%m-%d}) in {out_path}"
    )


@members_cli.command("rotate")
@click.argument("member_id")
@click.option("--csr", "csr_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--days", type=click.IntRange(1, 825), default=None)
@with_app("worker")
def rotate_member(member_id: str, csr_path: Path, out_path: Path, days: int | None) -> None:
    """Issue a member a new certificate; the old one works for ROTATION_OVERLAP_HOURS more (needs CA_DIR)."""
    overlap = dt.timedelta(hours=float(current_app.config["ROTATION_OVERLAP_HOURS"]))
    try:
        record = _desk().rotate(
            member_id,
            csr_path.read_bytes(),
            days=days or int(current_app.config["CERTIFICATE_DAYS"]),
            overlap=overlap,
        )
    except ProtocolError as exc:
        raise click.ClickException(exc.message) from exc
    runtime().db.session.commit()
    out_path.write_text(record.pem)
    click.echo(
        f"certificate {record.serial} issued to {member_id} in {out_path}; the old one is superseded in {overlap}"
    )


@members_cli.command("revoke")
@click.argument("member_id")
@click.option("--reason", type=click.Choice([r for r in REASONS if r != "superseded"]), default="cessationOfOperation")
@click.option("--note", required=True, help="Why: kept in the audit trail.")
@click.option("--certificate", "serial", default=None, help="Revoke only this certificate (its serial).")
@with_app("worker")
def revoke_member(member_id: str, reason: str, note: str, serial: str | None) -> None:
    """Revoke a member (all its certificates; it leaves the directory), or one certificate of it."""
    desk = _desk()
    try:
        if serial:
            record = runtime().db.session.get(MemberCertificate, serial)
            if record is None or record.member_id != member_id:
                raise click.ClickException(f"{member_id} has no certificate {serial}")
            desk.revoke(serial, reason=reason, note=note)
        else:
            desk.revoke_member(member_id, reason=reason, note=note)
    except ProtocolError as exc:
        raise click.ClickException(exc.message) from exc
    runtime().db.session.commit()
    click.echo(f"{'certificate ' + serial if serial else member_id} revoked; the CRL was republished")


@members_cli.command("certificates")
@click.argument("member_id")
@with_app("worker")
def list_certificates(member_id: str) -> None:
    """Print a member's certificates as JSON."""
    rows = runtime().db.session.scalars(
        select(MemberCertificate).where(MemberCertificate.member_id == member_id).order_by(MemberCertificate.issued_at)
    )
    click.echo(
        json.dumps(
            [
                {
                    "serial": r.serial,
                    "not_after": r.not_after.isoformat(),
                    "state": r.state,
                    "supersede_at": r.supersede_at.isoformat() if r.supersede_at else None,
                    "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
                    "reason": r.revocation_reason,
                }
                for r in rows
            ],
            indent=2,
        )
    )
