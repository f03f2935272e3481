"""The node's configuration keys and defaults (loading order: federation.config)."""

from typing import Any

PREFIX = "NODE"
DEFAULTS: dict[str, Any] = {
    "PORT": 9443,
    "EXCHANGE_ID": "exchange",
    # "pull": collect from the exchange's mailbox over one long-poll (no inbound port needed);
    # "push": the exchange delivers to this node's /v1/transactions (needs an inbound port).
    "INBOUND_MODE": "pull",
    "MAILBOX_WAIT_SECONDS": 20,
    # How often the signed member directory is fetched again (it is also fetched when a check needs it).
    "DIRECTORY_REFRESH_SECONDS": 300,
}
REQUIRED = ("TLS_CERT", "TLS_KEY", "CA_CERT", "CRL", "SQLALCHEMY_DATABASE_URI", "EXCHANGE_URL", "EXCHANGE_ID")
