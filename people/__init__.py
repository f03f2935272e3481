"""People at both ends: staff accounts, passwords, second factors, sessions and personal API tokens.

Both services use this package; each maps the table shapes in :mod:`people.models` onto its own
database (``exchange/accounts/models.py``, ``node/accounts/models.py``) and says which roles exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from audit.services import AuditModels
from people.services import RoleSet


@dataclass(frozen=True)
class StaffModels:
    """A service's people tables and roles, known to every surface (commands use them too)."""

    account: type[Any]
    token: type[Any]
    roles: RoleSet
    audit: AuditModels


def register(app: Flask, models: StaffModels) -> None:
    app.extensions["staff_models"] = models


def staff_models() -> StaffModels:
    found: StaffModels = current_app.extensions["staff_models"]
    return found


def init_app(
    app: Flask,
    *,
    account_model: type[Any],
    token_model: type[Any],
    roles: RoleSet,
    audit_models: AuditModels,
    service_name: str,
    home: str,
) -> None:
    """Give a console accounts: session cookie settings, CSRF, the people and audit pages."""
    import datetime as dt

    from audit.views import audit_blueprint
    from people.sessions import SESSION_COOKIE, People
    from people.totp import SecretBox
    from people.views import people_blueprint

    app.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=app.config["SESSION_ABSOLUTE_HOURS"]),
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=app.config["SESSION_ABSOLUTE_HOURS"] * 3600,
        WTF_CSRF_SSL_STRICT=True,
    )
    extension = People(
        account_model=account_model,
        token_model=token_model,
        roles=roles,
        audit_models=audit_models,
        service_name=service_name,
        box=SecretBox(app.config["SECRET_KEY"]),
    )
    extension.csrf.init_app(app)
    app.extensions["people"] = extension
    app.register_blueprint(people_blueprint(roles, home=home))
    app.register_blueprint(audit_blueprint(audit_models, readers=roles.managers))
