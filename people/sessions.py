"""Who is signed in: the session cookie, personal API tokens, and the :class:`StaffAccess` policy.

A session is Flask's signed cookie (``__Host-`` prefixed, Secure, HttpOnly, SameSite=Lax) holding the
account id, a random session id, when it was issued, when it was last used and how far sign-in got
(``password``: the second factor is still due; ``full``). The session id must be among the account's
live sessions (kept on the account row, the newest ``MAX_SESSIONS``), so signing out really ends the
session: a copy of the cookie is worthless afterwards. A session also ends after
``SESSION_IDLE_MINUTES`` without use, ``SESSION_ABSOLUTE_HOURS`` after sign-in, or when the account's
sessions are all ended (sign-out everywhere, a new password, a disabled account, a changed role).
Personal API tokens act as their account with its role; they are for ``/api/`` endpoints only and are
not subject to CSRF checks, since no browser sends them by itself.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, g, request, session
from flask_wtf.csrf import CSRFError, CSRFProtect

from audit.services import AuditLog, AuditModels
from people.services import AccountBook, RoleSet
from people.totp import SecretBox

SESSION_COOKIE = "__Host-hotline-session"
FULL, PASSWORD_ONLY = "full", "password"
MAX_SESSIONS = 20


@dataclass
class People:
    """A service's accounts: its tables, its roles, and the key that seals second-factor secrets."""

    account_model: type[Any]
    token_model: type[Any]
    roles: RoleSet
    audit_models: AuditModels
    service_name: str
    box: SecretBox
    csrf: CSRFProtect = field(default_factory=CSRFProtect)

    def book(self, db_session: Any, now: dt.datetime) -> AccountBook:
        return AccountBook(
            session=db_session,
            account_model=self.account_model,
            token_model=self.token_model,
            roles=self.roles,
            audit=AuditLog(db_session, self.audit_models),
            box=self.box,
            now=now,
        )


def people() -> People:
    found: People = current_app.extensions["people"]
    return found


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Principal:
    """A signed-in person (through a session or one of their tokens)."""

    account: Any
    via: str
    token_id: str | None = None

    @property
    def actor(self) -> str:
        return f"account:{self.account.username}"

    @property
    def role(self) -> str:
        return str(self.account.role)


def current_principal() -> Principal:
    principal: Principal = g.principal
    return principal


class SignInRequiredError(Exception):
    """No valid session: pages redirect to sign-in, APIs answer 401."""


class RoleForbiddenError(Exception):
    """Signed in, but the role may not do this: 403."""


class SetupRequiredError(Exception):
    """The account must change its password or enrol a second factor before anything else."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


# Sessions -------------------------------------------------------------------------------------------


def begin_session(account: Any, *, stage: str, now: dt.datetime) -> None:
    """Start a fresh session for ``account`` (a new id and cookie: nothing carries over from before)."""
    previous = session.get("sid")
    sid = secrets.token_urlsafe(18)
    live = [s for s in (account.sessions or []) if s != previous]
    account.sessions = [*live[-(MAX_SESSIONS - 1) :], sid]
    session.clear()
    session.permanent = True
    session.update(uid=account.id, sid=sid, iat=int(now.timestamp()), seen=int(now.timestamp()), stage=stage)


def end_session(account: Any | None = None) -> None:
    """End this browser's session, for good (its id leaves the account's live sessions)."""
    sid = session.get("sid")
    if account is not None and sid:
        account.sessions = [s for s in (account.sessions or []) if s != sid]
    session.clear()


def session_account(db_session: Any, *, now: dt.datetime) -> tuple[Any, str] | None:
    """The account and sign-in stage of the current session, if it is still valid."""
    uid = session.get("uid")
    if uid is None:
        return None
    config = current_app.config
    seen, issued = session.get("seen", 0), session.get("iat", 0)
    stamp = int(now.timestamp())
    if stamp - seen > config["SESSION_IDLE_MINUTES"] * 60 or stamp - issued > config["SESSION_ABSOLUTE_HOURS"] * 3600:
        session.clear()
        return None
    account = people().book(db_session, now).get(int(uid))
    if account is None or account.disabled_at is not None or session.get("sid") not in (account.sessions or []):
        session.clear()
        return None
    if stamp - seen >= 30:  # Refresh the idle clock (not on every request: the cookie need not change).
        session["seen"] = stamp
    return account, str(session.get("stage", PASSWORD_ONLY))


def setup_due(account: Any, roles: RoleSet) -> str | None:
    """What the account must do before anything else: ``password``, ``second_factor`` or nothing."""
    if account.must_change_password:
        return "password"
    if account.role in roles.second_factor_required and not account.has_second_factor:
        return "second_factor"
    return None


# The policy -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffAccess:
    """A signed-in member of staff holding one of ``roles`` (any role when None).

    ``api``: answer JSON (401/403) instead of redirecting; ``tokens``: a personal API token may be used
    instead of a session; ``setup``: reachable while the account still has to change its password or
    enrol a second factor; ``second_step``: the page where the second factor is entered.
    """

    roles: tuple[str, ...] | None = None
    api: bool = False
    tokens: bool = False
    setup: bool = False
    second_step: bool = False

    def check(self) -> None:
        from service.database import db_of

        db_session = db_of(current_app).session
        now = utcnow()
        principal = None
        authorization = request.headers.get("Authorization", "")
        if self.tokens and authorization.startswith("Bearer "):
            found = people().book(db_session, now).authenticate_token(authorization.removeprefix("Bearer ").strip())
            if found is None:
                raise SignInRequiredError("the API token is not valid (unknown, revoked, or its account is disabled)")
            principal = Principal(found[0], "token", found[1].id)
            g.skip_csrf = True
        else:
            current = session_account(db_session, now=now)
            if current is None:
                raise SignInRequiredError("sign in first")
            account, stage = current
            if self.second_step:
                if stage != PASSWORD_ONLY:
                    raise SignInRequiredError("sign in first")
                g.signing_in = True  # Not signed in yet: pages show no menu and no account.
            elif stage != FULL:
                raise SignInRequiredError("finish signing in first")
            principal = Principal(account, "session")
            due = setup_due(account, people().roles)
            if due and not self.setup and not self.second_step:
                raise SetupRequiredError(due)
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                people().csrf.protect()
        if self.roles is not None and principal.role not in self.roles:
            raise RoleForbiddenError(f"this needs the role {' or '.join(self.roles)}")
        g.principal = principal

    def describe(self) -> str:
        roles = "any role" if self.roles is None else ", ".join(self.roles)
        return f"staff {'token or session' if self.tokens else 'session'} ({roles})"


__all__ = [
    "FULL",
    "PASSWORD_ONLY",
    "SESSION_COOKIE",
    "CSRFError",
    "People",
    "Principal",
    "RoleForbiddenError",
    "SetupRequiredError",
    "SignInRequiredError",
    "StaffAccess",
    "begin_session",
    "current_principal",
    "end_session",
    "people",
    "session_account",
    "setup_due",
]
