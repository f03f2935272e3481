"""The exchange's configuration keys and defaults (loading order: service.config)."""

from typing import Any

from service.config import NETWORK_KEYS, ServiceConfig

DEFAULTS: dict[str, Any] = {"PORT": 8443, "CONSOLE_PORT": 8444}

EXCHANGE = ServiceConfig(
    prefix="EXCHANGE",
    defaults=DEFAULTS,
    required={
        "network": NETWORK_KEYS,
        "console": (*NETWORK_KEYS, "SECRET_KEY"),
        "worker": NETWORK_KEYS,
    },
)
