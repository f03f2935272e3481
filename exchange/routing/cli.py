"""``hotline-exchange routing``: the routing table and the secretariat's overrides."""

from __future__ import annotations

import datetime as dt
import json

import click

from exchange.routing.services import OverrideInputError, clear_override, routing_table, set_override
from federation.runtime import runtime
from service.cli import with_app

routing_cli = click.Group("routing", help="Where reports go by hosting country, and overrides.")


@routing_cli.command("show")
@with_app("worker")
def show() -> None:
    """Print the routing table as JSON: each country, the member its reports go to, and why."""
    rt = runtime()
    routes, fallback, expired = routing_table(rt.db.session, now=rt.clock())
    click.echo(
        json.dumps(
            {
                "fallback": fallback.id if fallback else None,
                "routes": [
                    {
                        "country": r.country,
                        "member": r.member,
                        "how": r.how,
                        "covered_by": r.covering,
                        "reason": r.override.reason if r.override else None,
                        "until": r.override.expires_at.isoformat() if r.override and r.override.expires_at else None,
                    }
                    for r in routes
                ],
                "inactive_overrides": [o.country for o in expired],
            },
            indent=2,
        )
    )


@routing_cli.command("override")
@click.argument("country")
@click.argument("member_id")
@click.option("--reason", required=True, help="Why: shown on the routing page and audited.")
@click.option("--until", "until", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="YYYY-MM-DD (UTC).")
@with_app("worker")
def override(country: str, member_id: str, reason: str, until: dt.datetime | None) -> None:
    """Send the reports of COUNTRY to MEMBER_ID, whoever covers it."""
    rt = runtime()
    try:
        row = set_override(
            rt.db.session,
            country=country,
            member_id=member_id,
            reason=reason,
            expires_at=until.replace(tzinfo=dt.UTC) if until else None,
            actor="cli",
            now=rt.clock(),
        )
    except OverrideInputError as exc:
        raise click.ClickException(exc.message) from exc
    rt.db.session.commit()
    click.echo(f"{row.country} → {row.member_id}" + (f" until {row.expires_at:%Y-%m-%d}" if row.expires_at else ""))


@routing_cli.command("clear")
@click.argument("country")
@click.option("--reason", required=True)
@with_app("worker")
def clear(country: str, reason: str) -> None:
    """Remove the override of COUNTRY: the directory routes it again."""
    rt = runtime()
    try:
        clear_override(rt.db.session, country=country, reason=reason, actor="cli", now=rt.clock())
    except OverrideInputError as exc:
        raise click.ClickException(exc.message) from exc
    rt.db.session.commit()
    click.echo(f"override of {country.upper()} removed")
