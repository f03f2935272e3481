"""The node's configuration keys and defaults (loading order: service.config)."""

from typing import Any

from service.config import NETWORK_KEYS, ServiceConfig

DEFAULTS: dict[str, Any] = {
    "PORT": 9443,
    "CONSOLE_PORT": 9444,
    "PUBLIC_HOST": "127.0.0.1",
    "PUBLIC_PORT": 9445,
    "PUBLIC_THREADS": 32,
    "PUBLIC_TLS_CERT": "",
    "PUBLIC_TLS_KEY": "",
    "EXCHANGE_ID": "exchange",
    # "pull": collect from the exchange's mailbox over one long-poll (no inbound port needed);
    # "push": the exchange delivers to this node's /v1/transactions (needs an inbound port).
    "INBOUND_MODE": "pull",
    "MAILBOX_WAIT_SECONDS": 20,
    # How often the signed member directory is fetched again (it is also fetched when a check needs it).
    "DIRECTORY_REFRESH_SECONDS": 300,
}
NODE_NETWORK_KEYS = (*NETWORK_KEYS, "EXCHANGE_URL", "EXCHANGE_ID")

NODE = ServiceConfig(
    prefix="NODE",
    defaults=DEFAULTS,
    required={
        "network": NODE_NETWORK_KEYS,
        "console": (*NODE_NETWORK_KEYS, "SECRET_KEY"),
        # The internet-facing public surface never loads the signing key.
        "public": ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY"),
        "worker": NODE_NETWORK_KEYS,
    },
    extra_positive=("PUBLIC_PORT", "PUBLIC_THREADS", "MAILBOX_WAIT_SECONDS", "DIRECTORY_REFRESH_SECONDS"),
    extra_paths=("PUBLIC_TLS_CERT", "PUBLIC_TLS_KEY"),
)
