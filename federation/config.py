"""Configuration for both services: defaults in code, then a TOML file, then environment, then overrides.

The file is named by ``<PREFIX>_CONFIG`` (``EXCHANGE_CONFIG`` or ``NODE_CONFIG``); environment variables
``<PREFIX>_<KEY>`` override single keys (values parsed as JSON where they parse, as Flask does); tests
pass overrides last. Everything is checked once at start-up, and a bad value stops the service with an
error that names the key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask


class ConfigError(Exception):
    """The configuration cannot run a service; the message names the key."""


COMMON_DEFAULTS: dict[str, Any] = {
    "SQLALCHEMY_DATABASE_URI": "sqlite:///var/hotline.db",
    "SQLALCHEMY_ENGINE_OPTIONS": {},
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "HOST": "127.0.0.1",
    "PORT": 8443,
    "SERVER_THREADS": 16,
    "CLOCK_SKEW_SECONDS": 300,
    "SCHEDULER_ENABLED": True,
    "DELIVERY_POLL_SECONDS": 1.0,
    "DELIVERY_BATCH_SIZE": 50,
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
    "RATE_LIMIT_STORAGE_URI": "memory://",
    # How often erased tokens are made unrecoverable from the database files (SQLite checkpoint).
    "FORGET_SECONDS": 10,
}
PATH_KEYS = ("TLS_CERT", "TLS_KEY", "CA_CERT", "CRL")
POSITIVE_KEYS = (
    "MAX_CONTENT_LENGTH",
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
)


def load_config(
    app: Flask,
    *,
    prefix: str,
    defaults: Mapping[str, Any],
    required: tuple[str, ...],
    overrides: Mapping[str, Any] | None,
) -> None:
    """Fill ``app.config`` in the documented order and validate it.

    Raises:
        ConfigError: a file cannot be read, a required key is missing, or a value is of the wrong kind.
    """
    app.config.from_mapping({**COMMON_DEFAULTS, **defaults})
    config_file = os.environ.get(f"{prefix}_CONFIG")
    if config_file:
        try:
            app.config.from_file(str(Path(config_file).resolve()), load=tomllib.load, text=False)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{prefix}_CONFIG={config_file}: {exc}") from exc
    app.config.from_prefixed_env(prefix)
    if overrides:
        app.config.from_mapping(overrides)
    for key in required:
        if not app.config.get(key):
            raise ConfigError(f"{key} is required (set it in the {prefix}_CONFIG file or {prefix}_{key})")
    for key in PATH_KEYS:
        if key in required and not Path(app.config[key]).is_file():
            raise ConfigError(f"{key}={app.config[key]} is not a readable file")
    for key in POSITIVE_KEYS:
        value = app.config.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{key} must be a positive number, not {value!r}")
