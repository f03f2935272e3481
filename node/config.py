"""The node's configuration keys and defaults (loading order: federation.config)."""

from typing import Any

PREFIX = "NODE"
DEFAULTS: dict[str, Any] = {"PORT": 9443, "EXCHANGE_ID": "exchange"}
REQUIRED = ("TLS_CERT", "TLS_KEY", "CA_CERT", "CRL", "SQLALCHEMY_DATABASE_URI", "EXCHANGE_URL", "EXCHANGE_ID")
