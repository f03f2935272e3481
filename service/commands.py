"""Commands every service has: the database schema, scheduled tasks, delivery queues."""

from __future__ import annotations

import json

import click
from flask import current_app

from service.cli import with_app
from service.worker import Task


def tasks_group(tasks: list[Task]) -> click.Group:
    """``tasks list`` and ``tasks run NAME``: every scheduled job is also a command."""
    group = click.Group("tasks", help="The scheduled jobs the worker runs; run one now.")

    @group.command("list")
    def list_tasks() -> None:
        """List the scheduled jobs and how often the worker runs them."""
        for task in tasks:
            when = (
                (f"every {task.seconds_key} seconds" if task.seconds_key else f"every {task.seconds:g} s")
                if task.scheduled
                else "on demand"
            )
            click.echo(f"{task.name:<20} {when:<32} {task.help.strip().splitlines()[0] if task.help else ''}")

    @group.command("run")
    @click.argument("name", type=click.Choice([task.name for task in tasks]))
    @with_app("worker")
    def run_task(name: str) -> None:
        """Run one job now, here (not in the worker)."""
        task = next(task for task in tasks if task.name == name)
        result = task.run(current_app._get_current_object())  # type: ignore[attr-defined]
        click.echo(f"{name}: {result}")

    return group


@click.command("outbox")
@with_app("worker")
def outbox_command() -> None:
    """Show the delivery queues: pending, dead letters, backoff, last contact."""
    from federation.delivery import describe_outbox
    from federation.runtime import runtime

    rt = runtime()
    click.echo(json.dumps(describe_outbox(rt.db.session, rt.models["outbox"], rt.models["peer"]), indent=2))
