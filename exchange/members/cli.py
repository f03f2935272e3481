from __future__ import annotations

import json

import click
from sqlalchemy import select

from exchange.members.models import Member
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
@with_app("worker")
def suspend_member(member_id: str) -> None:
    """Stop routing to and accepting from a member (its queued messages wait)."""
    rt = runtime()
    try:
        set_member_status(rt.db.session, member_id, "suspended", actor="cli")
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
