"""Accounts: creating and managing them, signing in with a password and a second factor, personal tokens.

Every change and every sign-in, failed or not, is written to the audit trail in the same transaction.

Sign-in answers never say whether an account exists: an unknown username, a wrong password, a disabled
or a locked account all get the same message, and take the same time (an unknown username is checked
against a dummy hash). After ``LOCK_AFTER`` failures in a row an account is locked for one minute, then
two, four, ... up to an hour for each further failure; the lock lifts by itself or by a supervisor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from audit.services import AuditLog
from people import passwords, totp
from service.database import DBSession

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
LOCK_AFTER = 5
MAX_LOCK = dt.timedelta(hours=1)
TOKEN_PREFIX = "hnt"  # noqa: S105 - the public prefix of personal API tokens, not a secret.
SIGN_IN_FAILED = (
    "Sign-in failed. Check your username, password and code. After several failures in a row, sign-in to the "
    "account pauses for a few minutes."
)


class AccountError(ValueError):
    """An account operation that cannot be done as asked; the message is for the person who asked."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class SignInFailedError(AccountError):
    def __init__(self) -> None:
        super().__init__(SIGN_IN_FAILED)


@dataclass(frozen=True)
class RoleSet:
    """The roles of a service's console, least privileged first."""

    roles: tuple[str, ...]
    managers: tuple[str, ...]
    """May manage accounts, read the audit trail and take supervisor decisions."""
    second_factor_required: tuple[str, ...]
    labels: dict[str, str]

    def label(self, role: str) -> str:
        return self.labels.get(role, role)


NODE_ROLES = RoleSet(
    roles=("analyst", "supervisor"),
    managers=("supervisor",),
    second_factor_required=("supervisor",),
    labels={"analyst": "Analyst", "supervisor": "Supervisor"},
)
EXCHANGE_ROLES = RoleSet(
    roles=("secretariat-viewer", "secretariat-admin"),
    managers=("secretariat-admin",),
    second_factor_required=("secretariat-admin",),
    labels={"secretariat-viewer": "Secretariat (viewer)", "secretariat-admin": "Secretariat (admin)"},
)


@dataclass
class AccountBook:
    """Account operations for one service, inside the caller's unit of work."""

    session: DBSession
    account_model: type[Any]
    token_model: type[Any]
    roles: RoleSet
    audit: AuditLog
    box: totp.SecretBox
    now: dt.datetime

    # Finding ----------------------------------------------------------------------------------------

    def by_username(self, username: str) -> Any | None:
        return self.session.scalar(
            select(self.account_model).where(self.account_model.username == username.strip().lower())
        )

    def get(self, account_id: int) -> Any | None:
        return self.session.get(self.account_model, account_id)

    def count(self) -> int:
        return int(self.session.scalar(select(func.count()).select_from(self.account_model)) or 0)

    # Creating and managing --------------------------------------------------------------------------

    def create(
        self, *, username: str, display_name: str, role: str, by: str, password: str | None = None
    ) -> tuple[Any, str]:
        """Create an account; return it and its first password (generated if none is given).

        A generated password must be changed at first sign-in.

        Raises:
            AccountError: naming the field at fault.
        """
        username = username.strip().lower()
        display_name = " ".join(display_name.split())
        if not USERNAME.match(username):
            raise AccountError(
                "Use 2 to 32 lowercase letters, digits, dots, dashes or underscores, starting with a letter or digit.",
                field="username",
            )
        if not 1 <= len(display_name) <= 120:
            raise AccountError("Give a name of 1 to 120 characters.", field="display_name")
        if role not in self.roles.roles:
            raise AccountError(f"Choose one of: {', '.join(self.roles.roles)}.", field="role")
        if self.by_username(username) is not None:
            raise AccountError("That username is taken.", field="username")
        generated = password is None
        if password is None:
            password = _generated_password()
        else:
            try:
                passwords.check_policy(password, username=username)
            except passwords.PasswordPolicyError as exc:
                raise AccountError(str(exc), field="password") from exc
        account = self.account_model(
            username=username,
            display_name=display_name,
            role=role,
            password_hash=passwords.hash_password(password),
            must_change_password=generated,
            recovery_codes=[],
            failed_attempts=0,
            sessions=[],
            created_at=self.now,
            created_by=by,
        )
        self.session.add(account)
        self.session.flush()
        self.audit.record(by, "account.create", "account", username, now=self.now, role=role)
        return account, password

    def set_disabled(self, account: Any, disabled: bool, *, by: str) -> None:
        account.disabled_at = self.now if disabled else None
        account.sessions = []  # Disabling signs the account out everywhere at once.
        self.audit.record(
            by, "account.disable" if disabled else "account.enable", "account", account.username, now=self.now
        )

    def set_role(self, account: Any, role: str, *, by: str) -> None:
        if role not in self.roles.roles:
            raise AccountError(f"Choose one of: {', '.join(self.roles.roles)}.", field="role")
        before, account.role = account.role, role
        account.sessions = []
        self.audit.record(by, "account.role", "account", account.username, now=self.now, before=before, after=role)

    def unlock(self, account: Any, *, by: str) -> None:
        account.failed_attempts, account.locked_until = 0, None
        self.audit.record(by, "account.unlock", "account", account.username, now=self.now)

    def reset_second_factor(self, account: Any, *, by: str) -> None:
        """Remove the second factor (a lost phone); the account must enrol again if its role requires it."""
        account.totp_secret, account.totp_confirmed_at, account.totp_last_step = None, None, None
        account.recovery_codes = []
        account.sessions = []
        self.audit.record(by, "account.second_factor_reset", "account", account.username, now=self.now)

    def reset_password(self, account: Any, *, by: str) -> str:
        """Give the account a new generated password, to be changed at next sign-in; return it."""
        password = _generated_password()
        account.password_hash = passwords.hash_password(password)
        account.must_change_password = True
        account.sessions = []
        account.failed_attempts, account.locked_until = 0, None
        self.audit.record(by, "account.password_reset", "account", account.username, now=self.now)
        return password

    # Signing in -------------------------------------------------------------------------------------

    def is_locked(self, account: Any) -> bool:
        return account.locked_until is not None and account.locked_until > self.now

    def check_password(self, username: str, password: str) -> Any:
        """The first step of signing in.

        Raises:
            SignInFailedError: whatever the reason (unknown, wrong, disabled, locked).
        """
        account = self.by_username(username) if len(username) <= 64 else None
        matches = passwords.password_matches(account.password_hash if account else None, password[:1024])
        actor = f"account:{account.username}" if account else "anonymous"
        if account is None:
            self.audit.record(actor, "sign_in.failed", "account", "-", now=self.now, reason="unknown username")
            raise SignInFailedError
        if account.disabled_at is not None or self.is_locked(account) or not matches:
            reason = "disabled" if account.disabled_at else "locked" if self.is_locked(account) else "wrong password"
            self._failed(account, reason)
            raise SignInFailedError
        if passwords.needs_rehash(account.password_hash):
            account.password_hash = passwords.hash_password(password)
        return account

    def check_second_factor(self, account: Any, code: str) -> str:
        """The second step: a TOTP code, or a recovery code (used up). Returns which was used.

        Raises:
            SignInFailedError: the code is wrong or used, or the account became locked or disabled.
        """
        if account.disabled_at is not None or self.is_locked(account):
            self._failed(account, "locked or disabled at second step")
            raise SignInFailedError
        secret = self.box.open(account.totp_secret) if account.totp_secret else None
        step = totp.accepted_step(secret, code, now=self.now, last_step=account.totp_last_step) if secret else None
        if step is not None:
            account.totp_last_step = step
            return "totp"
        digest = totp.recovery_digest(code)
        if digest in (account.recovery_codes or []):
            account.recovery_codes = [c for c in account.recovery_codes if c != digest]
            self.audit.record(
                f"account:{account.username}",
                "sign_in.recovery_code_used",
                "account",
                account.username,
                now=self.now,
                left=len(account.recovery_codes),
            )
            return "recovery_code"
        self._failed(account, "wrong code")
        raise SignInFailedError

    def signed_in(self, account: Any, *, method: str) -> None:
        account.failed_attempts, account.locked_until, account.last_sign_in_at = 0, None, self.now
        self.audit.record(
            f"account:{account.username}", "sign_in", "account", account.username, now=self.now, method=method
        )

    def _failed(self, account: Any, reason: str) -> None:
        account.failed_attempts += 1
        detail: dict[str, Any] = {"reason": reason, "failures": account.failed_attempts}
        if account.failed_attempts >= LOCK_AFTER:
            minutes = 2 ** min(account.failed_attempts - LOCK_AFTER, 6)
            account.locked_until = self.now + min(dt.timedelta(minutes=minutes), MAX_LOCK)
            detail["locked_until"] = account.locked_until.isoformat()
        self.audit.record(
            f"account:{account.username}", "sign_in.failed", "account", account.username, now=self.now, **detail
        )
        if "locked_until" in detail:
            self.audit.record(
                "system", "account.locked", "account", account.username, now=self.now, until=detail["locked_until"]
            )

    # The account's own settings -----------------------------------------------------------------------

    def change_password(self, account: Any, *, current: str, new: str) -> None:
        if not passwords.password_matches(account.password_hash, current):
            raise AccountError("Your current password is not right.", field="current")
        if current == new:
            raise AccountError("Choose a password you have not used here before.", field="new")
        try:
            passwords.check_policy(new, username=account.username)
        except passwords.PasswordPolicyError as exc:
            raise AccountError(str(exc), field="new") from exc
        account.password_hash = passwords.hash_password(new)
        account.must_change_password = False
        account.password_changed_at = self.now
        account.sessions = []  # Other sessions end; the caller starts a fresh one for this browser.
        self.audit.record(
            f"account:{account.username}", "account.password_change", "account", account.username, now=self.now
        )

    def begin_second_factor(self, account: Any) -> str:
        """Start (or restart) enrolment: a new secret, stored sealed, unconfirmed until a first code."""
        secret = totp.new_secret()
        account.totp_secret = self.box.seal(secret)
        account.totp_confirmed_at, account.totp_last_step = None, None
        return secret

    def pending_secret(self, account: Any) -> str | None:
        if account.totp_secret is None or account.totp_confirmed_at is not None:
            return None
        return self.box.open(account.totp_secret)

    def confirm_second_factor(self, account: Any, code: str) -> list[str]:
        """Finish enrolment with a first code; return the recovery codes (shown once, stored hashed)."""
        secret = self.pending_secret(account)
        step = totp.accepted_step(secret, code, now=self.now, last_step=None) if secret else None
        if step is None:
            raise AccountError(
                "That code is not right. Check the time on your phone and try the next code.", field="code"
            )
        codes = totp.new_recovery_codes()
        account.totp_confirmed_at, account.totp_last_step = self.now, step
        account.recovery_codes = [totp.recovery_digest(code) for code in codes]
        self.audit.record(
            f"account:{account.username}", "account.second_factor_enrol", "account", account.username, now=self.now
        )
        return codes

    def sign_out_everywhere(self, account: Any) -> None:
        account.sessions = []
        self.audit.record(
            f"account:{account.username}", "sign_out.everywhere", "account", account.username, now=self.now
        )

    # Personal API tokens -----------------------------------------------------------------------------

    def create_token(self, account: Any, name: str) -> tuple[Any, str]:
        """A new token acting as ``account``; return it and its one-time plaintext."""
        name = " ".join(name.split())
        if not 1 <= len(name) <= 80:
            raise AccountError("Name the token (1 to 80 characters), e.g. the script that will use it.", field="name")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        token = self.token_model(
            id=token_id,
            account_id=account.id,
            name=name,
            secret_hash=hashlib.sha256(secret.encode()).hexdigest(),
            created_at=self.now,
        )
        self.session.add(token)
        self.audit.record(f"account:{account.username}", "token.create", "token", token_id, now=self.now, name=name)
        return token, f"{TOKEN_PREFIX}_{token_id}_{secret}"

    def revoke_token(self, token: Any, *, by: str) -> None:
        if token.revoked_at is None:
            token.revoked_at = self.now
            self.audit.record(by, "token.revoke", "token", token.id, now=self.now)

    def tokens_of(self, account: Any) -> list[Any]:
        model = self.token_model
        return list(
            self.session.scalars(select(model).where(model.account_id == account.id).order_by(model.created_at.desc()))
        )

    def authenticate_token(self, presented: str) -> tuple[Any, Any] | None:
        """The account and token a presented ``hnt_<id>_<secret>`` stands for, if valid and usable."""
        prefix, _, rest = presented.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != TOKEN_PREFIX or not token_id or not secret or len(presented) > 200:
            return None
        token = self.session.get(self.token_model, token_id)
        digest = hashlib.sha256(secret.encode()).hexdigest()
        if token is None or token.revoked_at is not None or not hmac.compare_digest(token.secret_hash, digest):
            return None
        account = self.get(token.account_id)
        if account is None or account.disabled_at is not None:
            return None
        if token.last_used_at is None or self.now - token.last_used_at > dt.timedelta(minutes=1):
            token.last_used_at = self.now
        return account, token


def _generated_password() -> str:
    """Four groups of five random characters: long, unique, and easy to type once."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(4))
