"""``audit``: verify the chain, sign a checkpoint now, export the trail."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from flask import current_app
from sqlalchemy import select

from audit.services import ChainBrokenError, export_csv, sign_checkpoint, verify_chain
from people import staff_models
from service.cli import with_app


def audit_group() -> click.Group:
    group = click.Group("audit", help="The tamper-evident audit trail.")

    @group.command("verify")
    @with_app("worker")
    def verify() -> None:
        """Check every entry and every signed checkpoint; exit 1 naming the first entry found wrong."""
        rt = current_app.extensions["hotline"]
        try:
            summary = verify_chain(
                rt.db.session, staff_models().audit, trust=rt.trust, member_id=rt.member_id, now=dt.datetime.now(dt.UTC)
            )
        except ChainBrokenError as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(
            f"audit trail intact: {summary.entries} entries, {summary.checkpoints} signed checkpoints"
            + (f", the last at entry {summary.last_checkpoint_seq}" if summary.last_checkpoint_seq else "")
        )

    @group.command("checkpoint")
    @with_app("worker")
    def checkpoint() -> None:
        """Sign the head of the chain now (the worker does this every AUDIT_CHECKPOINT_SECONDS)."""
        rt = current_app.extensions["hotline"]
        made = sign_checkpoint(rt.db.session, staff_models().audit, rt.signer, now=dt.datetime.now(dt.UTC))
        rt.db.session.commit()
        click.echo(f"checkpoint signed at entry {made.seq}" if made else "nothing new since the last checkpoint")

    @group.command("export")
    @click.option("--out", type=click.Path(path_type=Path), required=True, help="The CSV file to write.")
    @with_app("worker")
    def export(out: Path) -> None:
        """Write the whole trail as CSV."""
        db = current_app.extensions["service_db"]
        entry = staff_models().audit.entry
        rows = db.session.execute(select(entry).order_by(entry.seq).execution_options(yield_per=1000)).scalars()
        with open(out, "w", newline="") as handle:
            for line in export_csv(rows):
                handle.write(line)
        click.echo(f"wrote {out}")

    return group
