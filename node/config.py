"""The node's configuration keys and defaults (loading order: service.config)."""

from typing import Any

from service.config import NETWORK_KEYS, ServiceConfig

DEFAULTS: dict[str, Any] = {
    "PORT": 9443,
    "CONSOLE_PORT": 9444,
    "PUBLIC_HOST": "127.0.0.1",
    "PUBLIC_PORT": 9445,
    "PUBLIC_THREADS": 8,
    "PUBLIC_TLS_CERT": "",
    "PUBLIC_TLS_KEY": "",
    "EXCHANGE_ID": "exchange",
    # "pull": collect from the exchange's mailbox over one long-poll (no inbound port needed);
    # "push": the exchange delivers to this node's /v1/transactions (needs an inbound port).
    "INBOUND_MODE": "pull",
    "MAILBOX_WAIT_SECONDS": 20,
    # How often the signed member directory is fetched again (it is also fetched when a check needs it).
    "DIRECTORY_REFRESH_SECONDS": 300,
    # How often the network CA's revocation list is fetched from the exchange (installed when newer).
    "CRL_REFRESH_SECONDS": 3600,
    # The public reporting page: the emergency number it shows, how long a reporter's contact details are
    # kept, and the limits per (hashed, daily-keyed) address. Limits are "N/unit" rules separated by ";".
    "PUBLIC_EMERGENCY_NUMBER": "112",
    "PUBLIC_CONTACT_DAYS": 90,
    "PUBLIC_RATE_LIMIT_REPORTS": "10/minute;30/hour",
    "PUBLIC_RATE_LIMIT_STATUS": "20/minute;60/hour",
    "PUBLIC_RATE_LIMIT_TOKEN": "30/minute",
    # Partners (OAuth2 client credentials): token lifetime, requests per partner, the largest body, and how
    # long an Idempotency-Key's answer is kept.
    "PARTNER_TOKEN_SECONDS": 3600,
    "PARTNER_RATE_LIMIT": "600/minute",
    "PARTNER_MAX_BODY_BYTES": 16 * 1024 * 1024,
    "IDEMPOTENCY_HOURS": 24,
    # The analyst's day: how often new cases are triaged against the network, whether an assessment needs a
    # supervisor's second look, and the hosting trace's sources (a resolver table replaces DNS in tests and
    # the demo; MaxMind files replace the packaged database; a CDN list replaces the packaged one).
    "TRIAGE_SECONDS": 15,
    "FOUR_EYES_REVIEW": False,
    "RESOLVER_TABLE": "",
    "DNS_SERVERS": [],
    "DNS_TIMEOUT_SECONDS": 4,
    "NETWORK_TABLE": "",
    "GEOIP_COUNTRY_DB": "",
    "GEOIP_ASN_DB": "",
    "CDN_RANGES_FILE": "",
    # Notices: the SMTP server they go through (none: notices wait, unsent), their sender, and how often the
    # worker sends what is due.
    "SMTP_HOST": "",
    "SMTP_PORT": 25,
    "SMTP_STARTTLS": False,
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    "SMTP_TIMEOUT_SECONDS": 30,
    "NOTICE_FROM": "",
    "NOTICE_SECONDS": 5,
    # Days when no notice is sent (ISO dates of public holidays, or weekday names), and the hours after the
    # first notice at which a case still up is flagged for the supervisor to escalate.
    "NOTICE_QUIET_DAYS": [],
    # Notices to one address wait this long for others to join them in one message (at most NOTICE_GROUP_MAX).
    "NOTICE_GROUP_SECONDS": 120,
    "NOTICE_GROUP_MAX": 20,
    "NOTICE_DEADLINE_HOURS": 72,
    "NOTICE_UPSTREAM_DEADLINE_HOURS": 48,
    # Removal checks: how often the worker looks for checks that are due, how often an open case's address is
    # checked and a removed one re-checked (for reappearance), the timeout, the egress proxy, and whether a
    # check may go to a private or loopback address (tests and the demo only).
    "REMOVAL_CHECK_ENABLED": True,
    "REMOVAL_CHECK_SECONDS": 60,
    "REMOVAL_CHECK_EVERY_SECONDS": 6 * 3600,
    "REMOVAL_RECHECK_EVERY_SECONDS": 24 * 3600,
    "REMOVAL_CHECK_TIMEOUT_SECONDS": 10,
    "REMOVAL_CHECK_PROXY": "",
    "REMOVAL_CHECK_ALLOW_PRIVATE": False,
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
    extra_positive=(
        "PUBLIC_PORT",
        "PUBLIC_THREADS",
        "MAILBOX_WAIT_SECONDS",
        "DIRECTORY_REFRESH_SECONDS",
        "PUBLIC_CONTACT_DAYS",
        "PARTNER_TOKEN_SECONDS",
        "PARTNER_MAX_BODY_BYTES",
        "IDEMPOTENCY_HOURS",
        "TRIAGE_SECONDS",
        "DNS_TIMEOUT_SECONDS",
        "SMTP_PORT",
        "SMTP_TIMEOUT_SECONDS",
        "NOTICE_SECONDS",
        "NOTICE_DEADLINE_HOURS",
        "NOTICE_UPSTREAM_DEADLINE_HOURS",
        "NOTICE_GROUP_MAX",
        "REMOVAL_CHECK_SECONDS",
        "REMOVAL_CHECK_EVERY_SECONDS",
        "REMOVAL_RECHECK_EVERY_SECONDS",
        "REMOVAL_CHECK_TIMEOUT_SECONDS",
    ),
    extra_paths=(
        "PUBLIC_TLS_CERT",
        "PUBLIC_TLS_KEY",
        "RESOLVER_TABLE",
        "NETWORK_TABLE",
        "GEOIP_COUNTRY_DB",
        "GEOIP_ASN_DB",
        "CDN_RANGES_FILE",
    ),
)
