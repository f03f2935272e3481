"""The hosting trace of a reported URL: its host's addresses, their country and network, and CDN flags.

The trace suggests a hosting country; it does not decide one. Where every address is a CDN's or a
reverse proxy's, there is no suggestion: the proxy's country says nothing about where the files are, and
the analyst is told whom to ask for the origin. The analyst can always set the country by hand, with a
reason (``node.cases``), and the trace keeps what each source said and how old its data was.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import maxminddb
from flask import Flask, current_app

from node.hosting.cdn import CDNRanges
from node.hosting.networks import MaxMindDatabase, NetworkDatabase, PackagedDatabase, TableDatabase
from node.hosting.resolver import DNSResolver, ResolutionError, Resolver, TableResolver, nameserver
from service.config import ConfigError

MAX_ADDRESSES = 16


@dataclass
class TracedAddress:
    address: str
    country: str | None
    asn: int | None
    as_name: str | None
    prefix: str | None
    private: bool = False
    cdn: str | None = None
    cdn_guidance: str | None = None


@dataclass
class Trace:
    host: str
    addresses: list[TracedAddress] = field(default_factory=list)
    error: str | None = None
    suggested_country: str | None = None
    behind_cdn: bool = False
    resolver: str = ""
    database: str = ""
    data_date: str | None = None
    cdn_ranges_date: str | None = None
    traced_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trace:
        """A trace kept as :meth:`to_json` wrote it."""
        return cls(**{**data, "addresses": [TracedAddress(**item) for item in data.get("addresses", [])]})


@dataclass
class HostingTools:
    """What a trace needs: a resolver, an address database, the CDN ranges (built once per process)."""

    resolver: Resolver
    database: NetworkDatabase
    cdn: CDNRanges


def tools_for(config: Any) -> HostingTools:
    """The trace's tools as configured (``RESOLVER_TABLE``, ``DNS_*``, ``NETWORK_TABLE``, ``GEOIP_*``,
    ``CDN_RANGES_FILE``).

    Raises:
        ConfigError: a configured file cannot be read.
    """
    resolver: Resolver
    try:
        if config.get("RESOLVER_TABLE"):
            resolver = TableResolver.from_file(Path(config["RESOLVER_TABLE"]))
        else:
            servers = [str(text) for text in config["DNS_SERVERS"]]
            for text in servers:
                nameserver(text)
            resolver = DNSResolver(timeout=float(config["DNS_TIMEOUT_SECONDS"]), nameservers=servers)
        database: NetworkDatabase
        if config.get("NETWORK_TABLE"):
            database = TableDatabase.from_file(Path(config["NETWORK_TABLE"]))
        elif config.get("GEOIP_COUNTRY_DB"):
            asn = Path(config["GEOIP_ASN_DB"]) if config.get("GEOIP_ASN_DB") else None
            database = MaxMindDatabase(Path(config["GEOIP_COUNTRY_DB"]), asn)
        else:
            database = PackagedDatabase()
        cdn = CDNRanges.load(Path(config["CDN_RANGES_FILE"]) if config.get("CDN_RANGES_FILE") else None)
    except (OSError, ValueError, KeyError, maxminddb.InvalidDatabaseError) as exc:
        raise ConfigError(
            f"the hosting trace cannot start: {exc} (RESOLVER_TABLE, NETWORK_TABLE, GEOIP_*, CDN_RANGES_FILE)"
        ) from exc
    return HostingTools(resolver=resolver, database=database, cdn=cdn)


def tools(app: Flask | None = None) -> HostingTools:
    """The current app's tools, made on first use (the packaged database takes a quarter second to load)."""
    target = app or current_app
    found: HostingTools | None = target.extensions.get("hosting")
    if found is None:
        found = tools_for(target.config)
        target.extensions["hosting"] = found
    return found


def host_of(canonical_url: str) -> str:
    """The host a canonical URL names (IDNA A-labels; IPv6 literals without brackets)."""
    return (urlsplit(canonical_url).hostname or "").rstrip(".")


def trace(canonical_url: str, hosting: HostingTools, *, now: dt.datetime) -> Trace:
    """Resolve the URL's host and place every address. Never raises for a name that does not resolve:
    the trace then carries the reason."""
    host = host_of(canonical_url)
    data_date = hosting.database.data_date
    result = Trace(
        host=host,
        resolver=hosting.resolver.describe(),
        database=hosting.database.describe(),
        data_date=data_date.isoformat() if data_date else None,
        cdn_ranges_date=hosting.cdn.updated.isoformat(),
        traced_at=now.isoformat(),
    )
    try:
        addresses = hosting.resolver.addresses(host)
    except ResolutionError as exc:
        result.error = exc.reason
        return result
    seen: list[str] = []
    for address in addresses:
        if address not in seen:
            seen.append(address)
    for address in seen[:MAX_ADDRESSES]:
        network = hosting.database.lookup(address)
        provider = hosting.cdn.match(address)
        result.addresses.append(
            TracedAddress(
                address=address,
                country=network.country,
                asn=network.asn,
                as_name=network.as_name,
                prefix=network.prefix,
                private=network.private,
                cdn=provider.name if provider else None,
                cdn_guidance=provider.guidance if provider else None,
            )
        )
    origins = [a.country for a in result.addresses if a.country and not a.cdn and not a.private]
    result.behind_cdn = any(a.cdn for a in result.addresses) and not origins
    if origins:
        result.suggested_country = Counter(origins).most_common(1)[0][0]
    return result
