"""Table shapes for staff accounts and their personal API tokens, mapped by each service onto its database."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from service.database import UTCDateTime


class AccountMixin:
    """A person who works in a console: an analyst, a supervisor, a member of the secretariat."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(200))
    must_change_password: Mapped[bool] = mapped_column(default=False)
    totp_secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Encrypted (people.totp.SecretBox); set on enrolment, confirmed by a first code."""
    totp_confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    recovery_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    """SHA-256 digests of the unused recovery codes."""
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sessions: Mapped[list[str]] = mapped_column(JSON, default=list)
    """The ids of the account's live sessions (the newest few): signing out removes one, ending all empties it."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_sign_in_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    @property
    def has_second_factor(self) -> bool:
        return self.totp_confirmed_at is not None


class ApiTokenMixin:
    """A personal API token: it acts as its account, with the account's role, until revoked."""

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    """The public part of the token (``hnt_<id>_<secret>``), used to find it."""
    name: Mapped[str] = mapped_column(String(80))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    @declared_attr
    def account_id(cls) -> Mapped[int]:  # noqa: N805 - SQLAlchemy passes the class.
        return mapped_column(ForeignKey("accounts.id"), index=True)
