"""Host names to addresses. The trace receives its resolver, so tests and the demo never query DNS.

:class:`DNSResolver` asks the system's (or the configured) name servers through dnspython, for A and AAAA
records, with a timeout for the whole lookup. :class:`TableResolver` answers from a fixed table (a JSON
file of ``{"host": ["address", ...]}``): the tests, the demo and anyone replaying a trace use it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import dns.exception
import dns.nameserver
import dns.resolver


class ResolutionError(Exception):
    """The host name did not resolve; ``reason`` says how, in words an analyst can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Resolver(Protocol):
    def addresses(self, host: str) -> list[str]: ...

    def describe(self) -> str: ...


def literal(host: str) -> str | None:
    """The address itself when ``host`` is an IP literal (``[::1]`` included), else None."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def nameserver(text: str) -> dns.nameserver.Do53Nameserver:
    """``192.0.2.53``, ``192.0.2.53:5353``, ``2001:db8::53`` or ``[2001:db8::53]:5353``.

    Raises:
        ValueError: not an address with an optional port.
    """
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest.removeprefix(":")) if rest else 53
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        port = int(number)
    ipaddress.ip_address(host)
    if not 0 < port < 65536:
        raise ValueError(f"{text}: the port must be 1 to 65535")
    return dns.nameserver.Do53Nameserver(host, port)


@dataclass
class DNSResolver:
    """A and AAAA records through dnspython; ``nameservers`` empty means the system's (each an address,
    optionally with a port: ``[::1]:5353``)."""

    timeout: float = 4.0
    nameservers: list[str] = field(default_factory=list)

    def addresses(self, host: str) -> list[str]:
        if (address := literal(host)) is not None:
            return [address]
        resolver = dns.resolver.Resolver(configure=not self.nameservers)
        if self.nameservers:
            resolver.nameservers = [nameserver(text) for text in self.nameservers]
        resolver.lifetime = self.timeout
        found: list[str] = []
        missing = 0
        for record_type in ("A", "AAAA"):
            try:
                answer = resolver.resolve(host, record_type)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers) as exc:
                raise ResolutionError(f"the name does not exist in DNS ({type(exc).__name__})") from exc
            except dns.resolver.NoAnswer:
                missing += 1
                continue
            except dns.exception.Timeout as exc:
                raise ResolutionError(f"no answer from DNS within {self.timeout:g} s") from exc
            found.extend(str(record) for record in answer)
        if not found:
            raise ResolutionError("the name has no IPv4 or IPv6 address")
        return found

    def describe(self) -> str:
        servers = ", ".join(self.nameservers) or "the system's name servers"
        return f"DNS ({servers}, {self.timeout:g} s timeout)"


@dataclass
class TableResolver:
    """Answers from a fixed table: the tests, the demo, and traces replayed from a file."""

    table: Mapping[str, list[str]]
    source: str = "a fixed table"

    @classmethod
    def from_file(cls, path: Path) -> TableResolver:
        return cls(json.loads(path.read_text(encoding="utf-8")), source=path.name)

    def addresses(self, host: str) -> list[str]:
        if (address := literal(host)) is not None:
            return [address]
        found = self.table.get(host.lower().rstrip("."))
        if not found:
            raise ResolutionError("the name is not in the resolver's table")
        return list(found)

    def describe(self) -> str:
        return f"a fixed table ({self.source})"
