"""Who may call an endpoint, declared at the endpoint, checked once at the edge, on by default.

Every view function carries an auth policy (``@policy(...)``): a peer certificate with roles (the network
surface), a staff session with roles, a personal API token, a partner's OAuth2 scope (the public API),
or explicitly :class:`Public`. Before any view runs, the edge asks the endpoint's policy to authenticate
the request; the policy refuses (raising) or records who is calling in ``g.principal``. An app in which
any endpoint declares no policy refuses to start (:func:`require_declared`), so a forgotten decorator is
a start-up error, not an open door.

The policies themselves live beside what they check (``federation.web`` for certificates, ``people`` for
sessions and tokens); this module holds what they share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from flask import Flask, current_app, g, request

from service.config import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


class Policy(Protocol):
    """Authenticates and authorizes a request for one endpoint; raises to refuse it."""

    def check(self) -> None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Public:
    """Reachable by anyone: the reporting page, static assets, sign-in, health checks. Say why."""

    why: str

    def check(self) -> None:
        g.principal = None

    def describe(self) -> str:
        return f"public ({self.why})"


def policy(declared: Policy) -> Callable[[F], F]:
    """Declare the auth policy of a view (the decorator nearest the function)."""

    def decorator(view: F) -> F:
        view.auth_policy = declared  # type: ignore[attr-defined]
        return view

    return decorator


def policy_of(view: Callable[..., Any]) -> Policy | None:
    found: Policy | None = getattr(view, "auth_policy", None)
    return found


def _enforce() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None:
        # No endpoint matched: a surface may still want to know who asks before it says "not found".
        unmatched: Policy | None = current_app.extensions.get("unmatched_policy")
        if unmatched is not None:
            unmatched.check()
        return
    declared = policy_of(view)
    if declared is None:  # require_declared makes this unreachable; fail closed all the same.
        raise ConfigError(f"endpoint {request.endpoint} declares no auth policy")
    declared.check()


def init_app(app: Flask, *, unmatched: Policy | None = None) -> None:
    """Check every request against its endpoint's policy before the view runs.

    ``unmatched`` is checked for requests that match no endpoint (the network surface authenticates
    even those, so that nobody learns which paths exist without a certificate).
    """
    if unmatched is not None:
        app.extensions["unmatched_policy"] = unmatched
    app.before_request(_enforce)


def _wrap(view: Callable[..., Any]) -> Callable[..., Any]:
    """A plain function around ``view`` (a bound method cannot carry an attribute)."""

    def serve(*args: Any, **kwargs: Any) -> Any:
        return view(*args, **kwargs)

    return serve


def require_declared(app: Flask) -> None:
    """Refuse to start an app in which an endpoint declares no auth policy.

    Flask's own static endpoints serve files from the app's static folders and are public by nature.

    Raises:
        ConfigError: naming every undeclared endpoint.
    """
    for endpoint, view in list(app.view_functions.items()):
        if (endpoint == "static" or endpoint.endswith(".static")) and policy_of(view) is None:
            app.view_functions[endpoint] = policy(Public("static assets"))(_wrap(view))
    missing = sorted(endpoint for endpoint, view in app.view_functions.items() if policy_of(view) is None)
    if missing:
        raise ConfigError(f"these endpoints declare no auth policy: {', '.join(missing)}")
