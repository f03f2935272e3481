"""Logging for every service: one line per event, to stderr, at the configured level."""

from __future__ import annotations

import ipaddress
import logging
import re

from flask import Flask

_IPV4 = re.compile(r"(?<![0-9.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?!\.?[0-9])")
_IPV6_CANDIDATE = re.compile(r"[0-9A-Fa-f]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")
REDACTED = "[address]"


def init_app(app: Flask) -> None:
    level = app.config["LOG_LEVEL"]
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    # cheroot and urllib3 are chatty at INFO; their errors still show.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def redact_addresses(text: str) -> str:
    """``text`` with every IPv4 and IPv6 address replaced by ``[address]``."""

    def ipv4(match: re.Match[str]) -> str:
        try:
            ipaddress.IPv4Address(match.group(0))
        except ValueError:
            return match.group(0)
        return REDACTED

    def ipv6(match: re.Match[str]) -> str:
        candidate = match.group(0)
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            return candidate
        return REDACTED

    return _IPV6_CANDIDATE.sub(ipv6, _IPV4.sub(ipv4, text))


class AddressRedactor(logging.Filter):
    """Rewrites every record so that no IP address reaches a log (messages, arguments and tracebacks)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_addresses(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = redact_addresses(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def anonymize() -> None:
    """From now on, no log line of this process carries an IP address (the public surface: reporters')."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(existing, AddressRedactor) for existing in handler.filters):
            handler.addFilter(AddressRedactor())
