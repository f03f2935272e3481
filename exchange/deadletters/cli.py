"""``hotline-exchange dead-letters``: list, re-queue and close what the exchange could not deliver."""

from __future__ import annotations

import json

import click

from exchange.deadletters.services import DeadLetterDesk, open_letters
from federation.errors import ProtocolError
from federation.runtime import runtime
from service.cli import with_app

dead_letters_cli = click.Group("dead-letters", help="Documents the exchange could not deliver.")


@dead_letters_cli.command("list")
@click.option("--destination", default=None)
@with_app("worker")
def list_letters(destination: str | None) -> None:
    """Print the open dead letters as JSON (newest first)."""
    rt = runtime()
    rows = rt.db.session.scalars(open_letters(rt.db.session, destination=destination).limit(500))
    click.echo(
        json.dumps(
            [
                {
                    "id": r.id,
                    "typ": r.typ,
                    "doc_id": r.doc_id,
                    "destination": r.destination,
                    "author": r.author,
                    "error": r.last_error,
                    "queued_at": r.created_at.isoformat(),
                }
                for r in rows
            ],
            indent=2,
        )
    )


def _desk() -> DeadLetterDesk:
    rt = runtime()
    return DeadLetterDesk(rt.db.session, rt.signer, actor="cli", now=rt.clock())


@dead_letters_cli.command("requeue")
@click.argument("outbox_id", type=int)
@click.option("--reason", required=True, help="What was fixed.")
@with_app("worker")
def requeue(outbox_id: int, reason: str) -> None:
    """Send a dead letter again (a report is routed anew)."""
    try:
        to = _desk().requeue(outbox_id, reason=reason)
    except ProtocolError as exc:
        raise click.ClickException(exc.message) from exc
    runtime().db.session.commit()
    click.echo(f"dead letter {outbox_id} re-queued for {to}")


@dead_letters_cli.command("close")
@click.argument("outbox_id", type=int)
@click.option("--reason", required=True)
@with_app("worker")
def close(outbox_id: int, reason: str) -> None:
    """Leave a dead letter undelivered for good (its document is erased)."""
    try:
        _desk().close(outbox_id, reason=reason)
    except ProtocolError as exc:
        raise click.ClickException(exc.message) from exc
    runtime().db.session.commit()
    click.echo(f"dead letter {outbox_id} closed")
