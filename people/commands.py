"""``accounts``: manage staff accounts from the command line (the first account is made here)."""

from __future__ import annotations

import datetime as dt
import sys

import click
from sqlalchemy import select

from audit.services import AuditLog
from people import staff_models
from people.services import AccountBook, AccountError
from people.totp import SecretBox
from service.cli import with_app

ACTOR = "cli"


def _book() -> AccountBook:
    from flask import current_app

    models = staff_models()
    db = current_app.extensions["service_db"]
    return AccountBook(
        session=db.session,
        account_model=models.account,
        token_model=models.token,
        roles=models.roles,
        audit=AuditLog(db.session, models.audit),
        box=SecretBox(current_app.config.get("SECRET_KEY") or "no console on this surface"),
        now=dt.datetime.now(dt.UTC),
    )


def _commit() -> None:
    from flask import current_app

    current_app.extensions["service_db"].session.commit()


def _account(book: AccountBook, username: str) -> object:
    account = book.by_username(username)
    if account is None:
        raise click.ClickException(f"no account {username!r}")
    return account


def accounts_group() -> click.Group:
    group = click.Group("accounts", help="Staff accounts: create the first one here; the console does the rest.")

    @group.command("create")
    @click.argument("username")
    @click.option("--name", "display_name", required=True, help="The person's full name.")
    @click.option("--role", required=True, help="Their role (see `accounts roles`).")
    @click.option(
        "--password-stdin", is_flag=True, help="Read their password from standard input instead of making one."
    )
    @with_app("worker")
    def create(username: str, display_name: str, role: str, password_stdin: bool) -> None:
        """Create an account. Without --password-stdin a first password is made, to be changed at first sign-in."""
        book = _book()
        password = sys.stdin.readline().rstrip("\n") if password_stdin else None
        try:
            account, first = book.create(
                username=username, display_name=display_name, role=role, by=ACTOR, password=password
            )
        except AccountError as exc:
            raise click.ClickException(f"{exc.field or 'account'}: {exc.message}") from exc
        _commit()
        if password is None:
            click.echo(
                f"created {account.username} ({role}); first password (shown once, to be changed at sign-in): {first}"
            )
        else:
            click.echo(f"created {account.username} ({role})")

    @group.command("roles")
    @with_app("worker")
    def roles() -> None:
        """List the roles of this service."""
        models = staff_models()
        for role in models.roles.roles:
            notes = []
            if role in models.roles.managers:
                notes.append("manages accounts, reads the audit trail")
            if role in models.roles.second_factor_required:
                notes.append("must use a second factor")
            click.echo(f"{role:<22} {models.roles.label(role)}{' — ' + '; '.join(notes) if notes else ''}")

    @group.command("list")
    @with_app("worker")
    def list_accounts() -> None:
        """List the accounts."""
        book = _book()
        for account in book.session.scalars(select(staff_models().account).order_by(staff_models().account.username)):
            state = "disabled" if account.disabled_at else "locked" if book.is_locked(account) else "active"
            factor = "2fa" if account.has_second_factor else "-"
            click.echo(f"{account.username:<24} {account.role:<20} {state:<9} {factor:<4} {account.display_name}")

    def action(name: str, help_text: str, apply: object) -> None:
        @group.command(name, help=help_text)
        @click.argument("username")
        @with_app("worker")
        def command(username: str) -> None:
            book = _book()
            account = _account(book, username)
            result = apply(book, account)  # type: ignore[operator]
            _commit()
            click.echo(result or f"{name}: {username}")

    action(
        "disable", "Disable an account (it is signed out everywhere).", lambda b, a: b.set_disabled(a, True, by=ACTOR)
    )
    action("enable", "Enable a disabled account.", lambda b, a: b.set_disabled(a, False, by=ACTOR))
    action("unlock", "Lift a lock after failed sign-ins.", lambda b, a: b.unlock(a, by=ACTOR))
    action(
        "reset-second-factor",
        "Remove an account's second factor (a lost phone); it enrols again at next sign-in.",
        lambda b, a: b.reset_second_factor(a, by=ACTOR),
    )
    action(
        "reset-password",
        "Make a new first password for an account (shown once, to be changed at sign-in).",
        lambda b, a: f"new first password for {a.username} (shown once): {b.reset_password(a, by=ACTOR)}",
    )
    return group
