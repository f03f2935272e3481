"""``hotline-node referrals verify FILE``: check a police referral's signature with the network CA."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from service.cli import with_app


@click.group("referrals")
def referrals_group() -> None:
    """Police referrals: signed exports of cases for the national police."""


@referrals_group.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_app("worker")
def verify_command(file: Path) -> None:
    """Verify FILE (a referral's .jws) against the network CA and CRL; print who signed it, when, and the cases."""
    from federation.errors import ProtocolError
    from federation.messages import POLICE_REFERRAL
    from federation.runtime import runtime
    from federation.signing import verify_jws

    try:
        signed = verify_jws(
            file.read_text(encoding="utf-8").strip(),
            expected_typ=POLICE_REFERRAL,
            trust=runtime().trust,
            now=dt.datetime.now(dt.UTC),
            clock_skew=dt.timedelta(seconds=300),
        )
    except ProtocolError as exc:
        raise click.ClickException(f"{file}: not a valid referral: {exc.message} ({exc.code})") from None
    claims = signed.claims
    issued = dt.datetime.fromtimestamp(claims["iat"], dt.UTC)
    click.echo(
        f"{file}: signed by {signed.author.member_id} on {issued:%Y-%m-%d %H:%M:%S} UTC"
        f" for {claims['police']} ({claims['country']})"
    )
    click.echo(json.dumps(claims["cases"], indent=2, ensure_ascii=False))
