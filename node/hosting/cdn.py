"""Content delivery networks and reverse proxies: an address in their published ranges is not the host.

The project ships a dated list (``node/hosting/data/cdn-ranges.json``); ``CDN_RANGES_FILE`` points to a
hotline's own copy, which ``hotline-node hosting cdn-ranges`` rewrites from the lists the providers
publish (Cloudflare's plain text lists, Fastly's JSON, AWS's ``ip-ranges.json`` for CloudFront),
downloaded by the operator: the service itself never fetches them.
"""

from __future__ import annotations

import bisect
import datetime as dt
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGED = Path(__file__).parent / "data" / "cdn-ranges.json"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Provider:
    name: str
    guidance: str
    source: str


class CDNRanges:
    """Which provider's published range, if any, holds an address (a sorted search per IP version)."""

    def __init__(self, document: dict[str, Any], *, path: Path) -> None:
        self.path = path
        self.updated = dt.date.fromisoformat(document["updated"])
        self.providers = [Provider(p["name"], p["guidance"], p["source"]) for p in document["providers"]]
        entries: dict[int, list[tuple[int, int, Provider]]] = {4: [], 6: []}
        for provider, raw in zip(self.providers, document["providers"], strict=True):
            for text in raw["ranges"]:
                network = ipaddress.ip_network(text, strict=False)
                entries[network.version].append(
                    (int(network.network_address), int(network.broadcast_address), provider)
                )
        self._entries = {version: sorted(found, key=lambda e: e[0]) for version, found in entries.items()}
        self._starts = {version: [e[0] for e in found] for version, found in self._entries.items()}
        self.count = sum(len(found) for found in self._entries.values())

    @classmethod
    def load(cls, path: Path | None = None) -> CDNRanges:
        chosen = path or PACKAGED
        return cls(json.loads(chosen.read_text(encoding="utf-8")), path=chosen)

    def match(self, address: str) -> Provider | None:
        parsed = ipaddress.ip_address(address)
        value = int(parsed)
        entries, starts = self._entries[parsed.version], self._starts[parsed.version]
        index = bisect.bisect_right(starts, value) - 1
        # Ranges of different providers do not nest, but a provider's own may: look back a little.
        for start, end, provider in reversed(entries[max(0, index - 8) : index + 1]):
            if start <= value <= end:
                return provider
        return None


def ranges_from_published(kind: str, text: str) -> list[str]:
    """The CIDR ranges in a provider's published list.

    ``kind``: ``plain`` (one range per line: Cloudflare), ``fastly`` (``{"addresses", "ipv6_addresses"}``)
    or ``aws-cloudfront`` (AWS ``ip-ranges.json``, the ``CLOUDFRONT`` service).

    Raises:
        ValueError: the text is not of that kind, or holds no valid range.
    """
    found: list[str] = []
    if kind == "plain":
        found = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    elif kind == "fastly":
        body = json.loads(text)
        found = [*body.get("addresses", []), *body.get("ipv6_addresses", [])]
    elif kind == "aws-cloudfront":
        body = json.loads(text)
        found = [p["ip_prefix"] for p in body.get("prefixes", []) if p.get("service") == "CLOUDFRONT"]
        found += [p["ipv6_prefix"] for p in body.get("ipv6_prefixes", []) if p.get("service") == "CLOUDFRONT"]
    else:
        raise ValueError(f"unknown list kind {kind!r} (plain, fastly, aws-cloudfront)")
    ranges = [str(ipaddress.ip_network(item, strict=False)) for item in found]
    if not ranges:
        raise ValueError("the list holds no address range")
    return ranges


def replace_provider(
    document: dict[str, Any], *, name: str, ranges: list[str], source: str, guidance: str | None, today: dt.date
) -> dict[str, Any]:
    """``document`` with one provider's ranges replaced (or the provider added) and today's date."""
    providers = [dict(p) for p in document["providers"]]
    existing = next((p for p in providers if p["name"].lower() == name.lower()), None)
    if existing is None:
        if not guidance:
            raise ValueError(f"{name} is a new provider: give the guidance analysts will read (--guidance)")
        providers.append({"name": name, "source": source, "guidance": guidance, "ranges": ranges})
    else:
        existing.update(ranges=ranges, source=source, **({"guidance": guidance} if guidance else {}))
    return {**document, "updated": today.isoformat(), "providers": providers}
