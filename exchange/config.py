"""The exchange's configuration keys and defaults (loading order: service.config)."""

from typing import Any

from service.config import NETWORK_KEYS, ServiceConfig

DEFAULTS: dict[str, Any] = {
    "PORT": 8443,
    "CONSOLE_PORT": 8444,
    # The network CA's directory (certs.authority): with it, admins onboard members from their certificate
    # signing requests, rotate and revoke certificates in the console, and every revocation republishes the
    # CRL. Without it, certificates are issued with `hotline-pki` and the console only shows them.
    "CA_DIR": "",
    "CERTIFICATE_DAYS": 365,
    # How long a member's old certificate keeps working after a new one is issued (then: superseded).
    "ROTATION_OVERLAP_HOURS": 72,
    "CRL_DAYS": 7,
    # How often the worker revokes certificates past their overlap and mails expiry warnings.
    "CERTIFICATES_SECONDS": 3600,
    "EXPIRY_WARNING_DAYS": [30, 7],
    # How often the worker brings the network status figures up to date (the dashboard shows "as of").
    "STATUS_ROLLUP_SECONDS": 60,
    # Mail to members' contacts (expiry warnings): none is sent without SMTP_HOST.
    "SMTP_HOST": "",
    "SMTP_PORT": 25,
    "SMTP_STARTTLS": False,
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    "SMTP_TIMEOUT_SECONDS": 30,
    "MAIL_FROM": "secretariat@exchange.invalid",
}

EXCHANGE = ServiceConfig(
    prefix="EXCHANGE",
    defaults=DEFAULTS,
    required={
        "network": NETWORK_KEYS,
        "console": (*NETWORK_KEYS, "SECRET_KEY"),
        "worker": NETWORK_KEYS,
    },
    extra_positive=(
        "CERTIFICATE_DAYS",
        "ROTATION_OVERLAP_HOURS",
        "CRL_DAYS",
        "CERTIFICATES_SECONDS",
        "SMTP_PORT",
        "STATUS_ROLLUP_SECONDS",
    ),
)
