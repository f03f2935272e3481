"""Addresses to countries and networks, from databases on disk: nothing is looked up over the network.

Two sources, the better one chosen by configuration:

- **MaxMind files** (``GEOIP_COUNTRY_DB``, ``GEOIP_ASN_DB``: GeoLite2 or GeoIP2 ``.mmdb`` files a hotline
  downloads under its own licence), read with ``maxminddb``: the country, and the AS number and name.
- **The packaged database** of ``geoip2fast`` (installed with the project, no download at run time):
  the country and the AS name, from MaxMind's GeoLite2 CSV as of the package's release. It has no AS
  number.

Every answer carries its source and the date of its data, because a country from an old database is a
guess the analyst must be able to weigh.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import maxminddb


@dataclass(frozen=True)
class Network:
    """Where an address is, as a database says."""

    country: str | None
    """ISO 3166 alpha-2, or None (private, reserved, or unknown)."""
    asn: int | None
    as_name: str | None
    prefix: str | None
    private: bool = False


class NetworkDatabase(Protocol):
    def lookup(self, address: str) -> Network: ...

    def describe(self) -> str: ...

    @property
    def data_date(self) -> dt.date | None: ...


def _private(address: str) -> bool:
    parsed = ipaddress.ip_address(address)
    return not parsed.is_global


class PackagedDatabase:
    """geoip2fast's Country+ASN data (IPv4 and IPv6), loaded once per process on first use."""

    FILE = "geoip2fast-asn-ipv6.dat.gz"

    def __init__(self) -> None:
        self._reader: Any = None
        self._lock = threading.Lock()
        self._date: dt.date | None = None
        self._source = ""

    def _open(self) -> Any:
        with self._lock:
            if self._reader is None:
                from geoip2fast import GeoIP2Fast

                reader = GeoIP2Fast(geoip2fast_data_file=self.FILE, verbose=False)
                info = reader.get_database_info()
                self._source = str(info.get("source_info", ""))
                found = re.search(r"(\d{8})", self._source)
                self._date = dt.datetime.strptime(found.group(1), "%Y%m%d").date() if found else None
                self._reader = reader
            return self._reader

    def lookup(self, address: str) -> Network:
        result = self._open().lookup(address)
        country = getattr(result, "country_code", "") or ""
        private = bool(getattr(result, "is_private", False)) or _private(address)
        return Network(
            country=country if re.fullmatch(r"[A-Z]{2}", country) and not private else None,
            asn=None,
            as_name=(getattr(result, "asn_name", "") or None) if not private else None,
            prefix=getattr(result, "asn_cidr", None) or getattr(result, "cidr", None),
            private=private,
        )

    @property
    def data_date(self) -> dt.date | None:
        self._open()
        return self._date

    def describe(self) -> str:
        self._open()
        return f"geoip2fast packaged data ({self._source or 'GeoLite2'})"


class MaxMindDatabase:
    """MaxMind ``.mmdb`` files: a country (or city) file, and optionally an ASN file."""

    def __init__(self, country_path: Path, asn_path: Path | None = None) -> None:
        self.country_path, self.asn_path = country_path, asn_path
        self._country = maxminddb.open_database(str(country_path))
        self._asn = maxminddb.open_database(str(asn_path)) if asn_path else None

    def lookup(self, address: str) -> Network:
        record, prefix_length = self._country.get_with_prefix_len(address)
        # A file that places a non-global address (a lab's own file, the tests' documentation ranges) is
        # believed; real databases place none.
        private = _private(address) and not record
        country = None
        if isinstance(record, dict):
            for key in ("country", "registered_country"):
                place = record.get(key)
                code = place.get("iso_code") if isinstance(place, dict) else None
                if code:
                    country = str(code)
                    break
        asn = as_name = None
        prefix = str(ipaddress.ip_network(f"{address}/{prefix_length}", strict=False)) if record else None
        if self._asn is not None and record:
            as_record, as_length = self._asn.get_with_prefix_len(address)
            if isinstance(as_record, dict):
                number, name = (
                    as_record.get("autonomous_system_number"),
                    as_record.get("autonomous_system_organization"),
                )
                asn = number if isinstance(number, int) else None
                as_name = name if isinstance(name, str) else None
                prefix = str(ipaddress.ip_network(f"{address}/{as_length}", strict=False))
        return Network(country=country, asn=asn, as_name=as_name, prefix=prefix, private=private)

    @property
    def data_date(self) -> dt.date | None:
        epochs = [self._country.metadata().build_epoch]
        if self._asn is not None:
            epochs.append(self._asn.metadata().build_epoch)
        return dt.datetime.fromtimestamp(min(epochs), dt.UTC).date()

    def describe(self) -> str:
        names = [self._country.metadata().database_type]
        if self._asn is not None:
            names.append(self._asn.metadata().database_type)
        return " and ".join(names) + " (MaxMind format)"

    def close(self) -> None:
        self._country.close()
        if self._asn is not None:
            self._asn.close()


class TableDatabase:
    """Networks from a JSON table: the demo and the tests (documentation ranges, which no real database
    places), and a hotline's own corrections where it knows better than the databases.

    The file: ``{"updated": "2026-11-30", "networks": [{"prefix": "192.0.2.0/24", "country": "DE",
    "asn": 64501, "as_name": "Example Hosting"}]}``. The most specific prefix that holds an address wins;
    an address in no prefix is unknown (or private, where it is not a global address).
    """

    def __init__(self, document: dict[str, Any], *, source: str = "a fixed table") -> None:
        self.source = source
        self._date = dt.date.fromisoformat(document["updated"])
        self._networks = sorted(
            ((ipaddress.ip_network(entry["prefix"], strict=False), entry) for entry in document["networks"]),
            key=lambda item: -item[0].prefixlen,
        )

    @classmethod
    def from_file(cls, path: Path) -> TableDatabase:
        import json

        return cls(json.loads(path.read_text(encoding="utf-8")), source=path.name)

    def lookup(self, address: str) -> Network:
        parsed = ipaddress.ip_address(address)
        for network, entry in self._networks:
            if network.version == parsed.version and parsed in network:
                return Network(
                    country=entry.get("country"),
                    asn=entry.get("asn"),
                    as_name=entry.get("as_name"),
                    prefix=str(network),
                )
        return Network(country=None, asn=None, as_name=None, prefix=None, private=_private(address))

    @property
    def data_date(self) -> dt.date | None:
        return self._date

    def describe(self) -> str:
        return f"a fixed table of networks ({self.source})"
