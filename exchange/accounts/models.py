"""The exchange's account tables (people.models)."""

from __future__ import annotations

from exchange.db import db
from people.models import AccountMixin, ApiTokenMixin


class Account(AccountMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "accounts"


class ApiToken(ApiTokenMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "api_tokens"
