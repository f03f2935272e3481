"""The exchange's configuration keys and defaults (loading order: federation.config)."""

from typing import Any

PREFIX = "EXCHANGE"
DEFAULTS: dict[str, Any] = {"PORT": 8443}
REQUIRED = ("TLS_CERT", "TLS_KEY", "CA_CERT", "CRL", "SQLALCHEMY_DATABASE_URI")
