"""Configuration for every service: defaults in code, then a TOML file, then environment, then overrides.

The file is named by ``<PREFIX>_CONFIG`` (``EXCHANGE_CONFIG`` or ``NODE_CONFIG``); environment variables
``<PREFIX>_<KEY>`` override single keys (values parsed as JSON where they parse, as Flask does); tests
pass overrides last. Everything is checked once at start-up, for the surface being started (a public
page needs no signing key, a network server needs no session secret), and a bad value stops it with one
line that names where the value came from (the file or the variable) and the key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask


class ConfigError(Exception):
    """The configuration cannot run a service; the message names the file (or variable) and the key."""


COMMON_DEFAULTS: dict[str, Any] = {
    "SQLALCHEMY_DATABASE_URI": "sqlite:///var/hotline.db",
    "SQLALCHEMY_ENGINE_OPTIONS": {},
    # SQLite only: how long a transaction waits for the write lock before it is refused (the network
    # surface answers 503, and the sender retries).
    "SQLITE_BUSY_TIMEOUT_SECONDS": 30,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "HOST": "127.0.0.1",
    "PORT": 8443,
    "SERVER_THREADS": 16,
    "CLOCK_SKEW_SECONDS": 300,
    "SCHEDULER_ENABLED": True,
    "DELIVERY_POLL_SECONDS": 1.0,
    "DELIVERY_BATCH_SIZE": 100,
    "DELIVERY_BACKOFF_BASE_SECONDS": 1.0,
    "DELIVERY_BACKOFF_CAP_SECONDS": 3600.0,
    "DELIVERY_MAX_ATTEMPTS": 30,
    "DELIVERY_THREADS": 8,
    "LOG_LEVEL": "INFO",
    # How long a revocation list past its nextUpdate is still used (with loud warnings) before the
    # service fails closed.
    "CRL_GRACE_SECONDS": 3 * 24 * 3600,
    # At most this many long-polls wait at once (one per member); the rest of the request threads are
    # kept for transactions.
    "MAILBOX_MAX_POLLS": 8,
    # Per-peer request limits on the network surface (limits' notation); storage is memory:// for one
    # process, or redis://127.0.0.1:6379 for several processes sharing the limits.
    "RATE_LIMIT_TRANSACTIONS": "100/second",
    "RATE_LIMIT_MAILBOX": "100/second",
    "RATE_LIMIT_DEFAULT": "20/second",
    "RATE_LIMIT_LOOKUP": "20/second",
    "RATE_LIMIT_STORAGE_URI": "memory://",
    # How often erased tokens are made unrecoverable from the database files (SQLite checkpoint).
    "FORGET_SECONDS": 10,
    # How often the worker copies SQLite's write-ahead log into the database (passive: blocks nobody).
    "CHECKPOINT_SECONDS": 1.0,
    # The console (staff) surface.
    "CONSOLE_HOST": "127.0.0.1",
    "CONSOLE_PORT": 8080,
    "CONSOLE_THREADS": 8,
    "CONSOLE_TLS_CERT": "",
    "CONSOLE_TLS_KEY": "",
    "SECRET_KEY": "",
    "SESSION_IDLE_MINUTES": 30,
    "SESSION_ABSOLUTE_HOURS": 12,
    "PROXY_HOPS": 0,
    "AUDIT_CHECKPOINT_SECONDS": 300,
}
PATH_KEYS = ("TLS_CERT", "TLS_KEY", "CA_CERT", "CRL", "CONSOLE_TLS_CERT", "CONSOLE_TLS_KEY")
POSITIVE_KEYS = (
    "MAX_CONTENT_LENGTH",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "PORT",
    "SERVER_THREADS",
    "CLOCK_SKEW_SECONDS",
    "DELIVERY_POLL_SECONDS",
    "DELIVERY_BATCH_SIZE",
    "DELIVERY_BACKOFF_BASE_SECONDS",
    "DELIVERY_BACKOFF_CAP_SECONDS",
    "DELIVERY_MAX_ATTEMPTS",
    "DELIVERY_THREADS",
    "CRL_GRACE_SECONDS",
    "MAILBOX_MAX_POLLS",
    "FORGET_SECONDS",
    "CHECKPOINT_SECONDS",
    "CONSOLE_PORT",
    "CONSOLE_THREADS",
    "SESSION_IDLE_MINUTES",
    "SESSION_ABSOLUTE_HOURS",
    "AUDIT_CHECKPOINT_SECONDS",
)
NETWORK_KEYS = ("TLS_CERT", "TLS_KEY", "CA_CERT", "CRL", "SQLALCHEMY_DATABASE_URI")
"""What every surface that signs or verifies network messages needs."""
MIN_SECRET_KEY_LENGTH = 32
MAX_TRANSACTION_DOCUMENTS = 100
"""The transaction schema's ``maxItems``: a bigger batch would be refused whole by every receiver."""


@dataclass(frozen=True)
class ServiceConfig:
    """One service's configuration: its environment prefix, defaults, and what each surface requires."""

    prefix: str
    defaults: Mapping[str, Any]
    required: Mapping[str, tuple[str, ...]]
    """Surface name → the keys it cannot start without."""
    extra_positive: tuple[str, ...] = field(default=())
    extra_paths: tuple[str, ...] = field(default=())


class _Sources:
    """Where each key's value came from, so an error can name the file or the variable."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.where: dict[str, str] = {}

    def describe(self, key: str) -> str:
        return self.where.get(key, f"the built-in default (set it in the file named by {self.prefix}_CONFIG)")


def load_config(app: Flask, spec: ServiceConfig, *, surface: str, overrides: Mapping[str, Any] | None) -> None:
    """Fill ``app.config`` in the documented order and validate it for ``surface``.

    Raises:
        ConfigError: a file cannot be read, a required key is missing, or a value is of the wrong kind.
    """
    sources = _Sources(spec.prefix)
    app.config.from_mapping({**COMMON_DEFAULTS, **spec.defaults})
    config_file = os.environ.get(f"{spec.prefix}_CONFIG")
    if config_file:
        path = Path(config_file).resolve()
        try:
            with open(path, "rb") as handle:
                values = tomllib.load(handle)
        except FileNotFoundError as exc:
            raise ConfigError(f"{spec.prefix}_CONFIG={config_file}: no such file") from exc
        except OSError as exc:
            raise ConfigError(f"{spec.prefix}_CONFIG={config_file}: cannot be read ({exc.strerror})") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_file}: not valid TOML ({exc})") from exc
        for key, value in values.items():
            if key.isupper():
                app.config[key] = value
                sources.where[key] = str(config_file)
    before = dict(app.config)
    app.config.from_prefixed_env(spec.prefix)
    for key, value in app.config.items():
        if key not in before or before[key] is not value:
            sources.where[key] = f"environment variable {spec.prefix}_{key}"
    if overrides:
        app.config.from_mapping(overrides)
        for key in overrides:
            sources.where[key] = "the overrides given to the factory"
    if surface not in spec.required:
        raise ConfigError(f"unknown surface {surface!r}; one of {', '.join(spec.required)}")
    if not config_file and not overrides and not any(key.startswith(f"{spec.prefix}_") for key in os.environ):
        raise ConfigError(
            f"{spec.prefix}_CONFIG is not set: point it at this service's TOML file (see docs/operations.md)"
        )
    for key in spec.required[surface]:
        if not app.config.get(key):
            raise ConfigError(f"{sources.describe(key)}: {key} is required by the {surface} surface")
    for key in (*PATH_KEYS, *spec.extra_paths):
        value = app.config.get(key)
        if value and not Path(value).is_file():
            raise ConfigError(f"{sources.describe(key)}: {key}={value} is not a readable file")
    for key in (*POSITIVE_KEYS, *spec.extra_positive):
        value = app.config.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{sources.describe(key)}: {key} must be a positive number, not {value!r}")
    if app.config["DELIVERY_BATCH_SIZE"] > MAX_TRANSACTION_DOCUMENTS:
        raise ConfigError(
            f"{sources.describe('DELIVERY_BATCH_SIZE')}: DELIVERY_BATCH_SIZE must be at most "
            f"{MAX_TRANSACTION_DOCUMENTS} (the protocol's limit of documents per transaction), not "
            f"{app.config['DELIVERY_BATCH_SIZE']!r}"
        )
    if "SECRET_KEY" in spec.required[surface] and len(str(app.config["SECRET_KEY"])) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(
            f"{sources.describe('SECRET_KEY')}: SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} random characters"
        )
    if bool(app.config["CONSOLE_TLS_CERT"]) != bool(app.config["CONSOLE_TLS_KEY"]):
        raise ConfigError(f"{sources.describe('CONSOLE_TLS_CERT')}: set both CONSOLE_TLS_CERT and CONSOLE_TLS_KEY")
