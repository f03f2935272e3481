"""The command line of a service, for people: every command listed without a configuration, clear errors.

``hotline-node --help`` lists every command whatever the environment; a command builds the app it needs
(for the surface it serves) only when it runs. A missing or bad configuration is one line naming the
file or variable and the key, never a traceback, and Flask's generic options (``--app``, ``--env-file``)
are not offered because they do not apply.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click
from flask import Flask

from federation.errors import InternalError, ProtocolError
from service.config import ConfigError
from service.memory import limit_arenas

F = TypeVar("F", bound=Callable[..., Any])
AppFactory = Callable[..., Flask]


def with_app(surface: str = "worker") -> Callable[[F], F]:
    """Run the command inside an app context of its service, built for ``surface``.

    The factory comes from the group (``ctx.obj``); errors a person can fix become one clear line.
    """

    def decorator(command: F) -> F:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            factory: AppFactory = click.get_current_context().find_root().obj
            try:
                app = factory(surface=surface)
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from exc
            except InternalError as exc:
                raise click.ClickException(str(exc)) from exc
            with app.app_context():
                try:
                    return command(*args, **kwargs)
                except ProtocolError as exc:
                    raise click.ClickException(f"{exc.code}: {exc.message}") from exc
                except (ConfigError, InternalError) as exc:
                    raise click.ClickException(str(exc)) from exc

        return wrapper  # type: ignore[return-value]

    return decorator


def service_group(name: str, help_text: str, factory: AppFactory) -> click.Group:
    """The top-level group of a service's command (``hotline-exchange``, ``hotline-node``)."""

    @click.group(name=name, help=help_text, context_settings={"help_option_names": ["-h", "--help"]})
    @click.pass_context
    def group(ctx: click.Context) -> None:
        limit_arenas()  # Before any thread starts (service.memory).
        ctx.obj = factory

    return group
