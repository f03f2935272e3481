"""The hosting trace's parts, with no network: name resolution (a DNS server of the test's own on
127.0.0.1, and tables), address databases (the packaged one, MaxMind files written here, tables), the CDN
ranges and their update command, and the trace's suggestion."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import dns.rrset
import pytest
from click.testing import CliRunner

from node.hosting.cdn import CDNRanges, ranges_from_published, replace_provider
from node.hosting.commands import hosting_group
from node.hosting.networks import MaxMindDatabase, PackagedDatabase, TableDatabase
from node.hosting.resolver import DNSResolver, ResolutionError, TableResolver, nameserver
from node.hosting.services import HostingTools, tools_for, trace
from service.config import ConfigError

NOW = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
NETWORKS = {
    "updated": "2026-10-01",
    "networks": [
        {"prefix": "192.0.2.0/24", "country": "DE", "asn": 64501, "as_name": "Example Hosting"},
        {"prefix": "192.0.2.128/25", "country": "AT", "asn": 64505, "as_name": "More Specific"},
        {"prefix": "198.51.100.0/24", "country": "FR", "asn": 64502, "as_name": "Exemple"},
        {"prefix": "203.0.113.0/24", "country": "US", "asn": 64510, "as_name": "Example CDN"},
    ],
}
CDN = {
    "updated": "2026-09-01",
    "providers": [
        {"name": "Example CDN", "source": "test", "guidance": "Ask for the origin.", "ranges": ["203.0.113.0/24"]}
    ],
}


def tools_with(hosts: dict[str, list[str]]) -> HostingTools:
    return HostingTools(
        resolver=TableResolver(hosts), database=TableDatabase(NETWORKS), cdn=CDNRanges(CDN, path=Path("test"))
    )


# --- the trace ----------------------------------------------------------------------------------------------


def test_the_trace_suggests_the_country_most_origin_addresses_are_in() -> None:
    found = trace(
        "http://mixed.example/a",
        tools_with({"mixed.example": ["192.0.2.1", "192.0.2.2", "198.51.100.1", "203.0.113.9", "192.0.2.1"]}),
        now=NOW,
    )
    assert [a.address for a in found.addresses] == ["192.0.2.1", "192.0.2.2", "198.51.100.1", "203.0.113.9"]
    assert found.suggested_country == "DE" and found.behind_cdn is False
    assert found.addresses[3].cdn == "Example CDN" and found.addresses[3].cdn_guidance == "Ask for the origin."
    assert found.data_date == "2026-10-01" and found.cdn_ranges_date == "2026-09-01"
    assert found.traced_at == NOW.isoformat() and "fixed table" in found.resolver


def test_a_trace_from_fixed_tables_names_the_files_not_the_servers_folders(tmp_path: Path) -> None:
    """The analyst's case page shows where a trace's answers came from: the table's name is enough, and
    the operator's folder layout (deployment detail) stays off the page."""
    resolver_file, networks_file = tmp_path / "resolver.json", tmp_path / "networks.json"
    resolver_file.write_text(json.dumps({"mixed.example": ["192.0.2.1"]}), encoding="utf-8")
    networks_file.write_text(json.dumps(NETWORKS), encoding="utf-8")
    tools = HostingTools(
        resolver=TableResolver.from_file(resolver_file),
        database=TableDatabase.from_file(networks_file),
        cdn=CDNRanges(CDN, path=Path("test")),
    )
    found = trace("http://mixed.example/a", tools, now=NOW)
    assert found.resolver == "a fixed table (resolver.json)"
    assert "a fixed table of networks (networks.json)" in found.database
    assert str(tmp_path) not in found.resolver + found.database


def test_behind_a_cdn_there_is_no_suggestion_and_the_analyst_is_told_whom_to_ask() -> None:
    found = trace("https://proxied.example/", tools_with({"proxied.example": ["203.0.113.5", "203.0.113.6"]}), now=NOW)
    assert found.behind_cdn is True and found.suggested_country is None
    assert {a.cdn for a in found.addresses} == {"Example CDN"}


VECTORS = json.loads((Path(__file__).parent / "vectors" / "hosting-trace.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("vector", VECTORS["traces"], ids=lambda v: v["host"])
def test_the_most_specific_network_wins_and_private_addresses_suggest_nothing(vector: dict[str, object]) -> None:
    host = str(vector["host"])
    found = trace(f"http://{host}/", tools_with({host: list(vector["addresses"])}), now=NOW)  # type: ignore[call-overload]
    assert [a.address for a in found.addresses] == vector["addresses"]
    assert found.addresses[0].country == vector["country"] and found.addresses[0].prefix == vector["prefix"]
    assert all(a.private == vector["private"] for a in found.addresses)
    assert found.suggested_country == vector["suggested"]


def test_an_address_literal_is_traced_without_resolving_and_a_name_that_does_not_resolve_says_why() -> None:
    tools = tools_with({})
    literal = trace("http://198.51.100.7:8080/x", tools, now=NOW)
    assert literal.addresses[0].address == "198.51.100.7" and literal.suggested_country == "FR"
    v6 = trace("http://[2001:db8::1]/x", tools, now=NOW)
    assert v6.addresses[0].address == "2001:db8::1"
    missing = trace("http://xn--bcher-kva.example/", tools, now=NOW)
    assert missing.host == "xn--bcher-kva.example" and missing.error and not missing.addresses


# --- name resolution -----------------------------------------------------------------------------------------


class LocalDNS:
    """A DNS server on 127.0.0.1 (UDP) answering from a table; unknown names are NXDOMAIN, ``silent.example``
    gets no answer at all (a timeout)."""

    def __init__(self, records: dict[str, list[str]]) -> None:
        self.records = records
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                wire, client = self.socket.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(wire)
            question = query.question[0]
            name = question.name.to_text().rstrip(".")
            if name == "silent.example":
                continue
            response = dns.message.make_response(query)
            if name not in self.records:
                response.set_rcode(dns.rcode.NXDOMAIN)
            else:
                kind = dns.rdatatype.to_text(question.rdtype)
                values = [a for a in self.records[name] if (":" in a) == (kind == "AAAA")]
                if values:
                    response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", kind, values))
            self.socket.sendto(response.to_wire(), client)

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def local_dns() -> Iterator[LocalDNS]:
    server = LocalDNS(
        {"host.example": ["192.0.2.1", "2001:db8::1"], "v4only.example": ["198.51.100.1"], "empty.example": []}
    )
    yield server
    server.close()


def test_dns_resolution_asks_the_configured_server_for_both_address_families(local_dns: LocalDNS) -> None:
    resolver = DNSResolver(timeout=2, nameservers=[f"127.0.0.1:{local_dns.port}"])
    assert resolver.addresses("host.example") == ["192.0.2.1", "2001:db8::1"]
    assert resolver.addresses("v4only.example") == ["198.51.100.1"]
    with pytest.raises(ResolutionError, match="does not exist"):
        resolver.addresses("missing.example")
    with pytest.raises(ResolutionError, match="no IPv4 or IPv6 address"):
        resolver.addresses("empty.example")
    with pytest.raises(ResolutionError, match=r"within 0\.5 s"):
        DNSResolver(timeout=0.5, nameservers=[f"127.0.0.1:{local_dns.port}"]).addresses("silent.example")
    assert f"127.0.0.1:{local_dns.port}" in resolver.describe()


def test_name_servers_are_addresses_with_an_optional_port() -> None:
    assert (nameserver("192.0.2.53").address, nameserver("192.0.2.53").port) == ("192.0.2.53", 53)
    assert (nameserver("[::1]:5353").address, nameserver("[::1]:5353").port) == ("::1", 5353)
    assert nameserver("2001:db8::53").port == 53
    for wrong in ("dns.example", "192.0.2.53:0", "[::1]:x"):
        with pytest.raises(ValueError):
            nameserver(wrong)


def test_a_broken_trace_configuration_is_refused_at_start(tmp_path: Path) -> None:
    base = {
        "RESOLVER_TABLE": "",
        "DNS_SERVERS": [],
        "DNS_TIMEOUT_SECONDS": 4,
        "NETWORK_TABLE": "",
        "GEOIP_COUNTRY_DB": "",
        "GEOIP_ASN_DB": "",
        "CDN_RANGES_FILE": "",
    }
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    for change in (
        {"DNS_SERVERS": ["resolver.example"]},
        {"CDN_RANGES_FILE": str(broken)},
        {"GEOIP_COUNTRY_DB": str(broken)},
        {"NETWORK_TABLE": str(broken)},
    ):
        with pytest.raises(ConfigError, match="the hosting trace cannot start"):
            tools_for({**base, **change})
    assert isinstance(tools_for(base).resolver, DNSResolver)


# --- address databases -----------------------------------------------------------------------------------------


def test_the_packaged_database_places_addresses_without_any_download() -> None:
    database = PackagedDatabase()
    google = database.lookup("8.8.8.8")
    assert google.country == "US" and google.as_name == "GOOGLE" and google.prefix == "8.8.8.0/24"
    assert database.lookup("2a00:1450:4001::1").country == "DE"
    for address in VECTORS["not_global"]:
        inside = database.lookup(address)
        assert inside.private and inside.country is None, address
    assert database.data_date == dt.date(2024, 6, 18) and "GeoLite2" in database.describe()


def test_maxmind_files_give_the_country_and_the_autonomous_system(tmp_path: Path) -> None:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    country = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-Country")
    country.insert_network(IPSet(["192.0.2.0/24"]), {"country": {"iso_code": "DE"}})
    country.insert_network(IPSet(["198.51.100.0/24"]), {"registered_country": {"iso_code": "FR"}})
    country.insert_network(IPSet(["2001:db8::/32"]), {"country": {"iso_code": "NL"}})
    country.to_db_file(str(tmp_path / "country.mmdb"))
    asn = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-ASN")
    asn.insert_network(
        IPSet(["192.0.2.0/25"]),
        {"autonomous_system_number": 64501, "autonomous_system_organization": "Example Hosting"},
    )
    asn.to_db_file(str(tmp_path / "asn.mmdb"))
    database = MaxMindDatabase(tmp_path / "country.mmdb", tmp_path / "asn.mmdb")
    hosted = database.lookup("192.0.2.10")
    assert (hosted.country, hosted.asn, hosted.as_name, hosted.prefix) == (
        "DE",
        64501,
        "Example Hosting",
        "192.0.2.0/25",
    )
    assert database.lookup("198.51.100.3").country == "FR"
    assert database.lookup("2001:db8::5").country == "NL"
    unknown = database.lookup("233.252.0.1")
    assert unknown.country is None and unknown.asn is None
    assert database.data_date == dt.datetime.now(dt.UTC).date()
    assert database.describe() == "GeoLite2-Country and GeoLite2-ASN (MaxMind format)"
    database.close()


# --- CDN ranges ---------------------------------------------------------------------------------------------


def test_the_packaged_cdn_list_knows_the_big_reverse_proxies() -> None:
    ranges = CDNRanges.load()
    assert {p.name for p in ranges.providers} >= {"Cloudflare", "Fastly"}
    assert ranges.count > 20
    cloudflare = ranges.match("104.16.0.1")
    assert cloudflare is not None and cloudflare.name == "Cloudflare" and "origin" in cloudflare.guidance
    assert ranges.match("2606:4700::6810:1") is not None
    assert ranges.match("192.0.2.1") is None


def test_published_lists_are_read_in_each_providers_format() -> None:
    assert ranges_from_published("plain", "# v4\n173.245.48.0/20\n\n103.21.244.0/22\n") == [
        "173.245.48.0/20",
        "103.21.244.0/22",
    ]
    fastly = json.dumps({"addresses": ["23.235.32.0/20"], "ipv6_addresses": ["2a04:4e40::/32"]})
    assert ranges_from_published("fastly", fastly) == ["23.235.32.0/20", "2a04:4e40::/32"]
    aws = json.dumps(
        {
            "prefixes": [
                {"ip_prefix": "13.32.0.0/15", "service": "CLOUDFRONT"},
                {"ip_prefix": "3.5.0.0/19", "service": "S3"},
            ],
            "ipv6_prefixes": [{"ipv6_prefix": "2600:9000::/28", "service": "CLOUDFRONT"}],
        }
    )
    assert ranges_from_published("aws-cloudfront", aws) == ["13.32.0.0/15", "2600:9000::/28"]
    for kind, text in (("plain", "not a range"), ("plain", ""), ("fastly", "{}"), ("other", "")):
        with pytest.raises(ValueError):
            ranges_from_published(kind, text)
    with pytest.raises(ValueError, match="guidance"):
        replace_provider(CDN, name="New CDN", ranges=["192.0.2.0/24"], source="x", guidance=None, today=NOW.date())


def test_the_cdn_ranges_command_replaces_one_provider_in_the_nodes_list(tmp_path: Path) -> None:
    listing = tmp_path / "ips-v4"
    listing.write_text("192.0.2.0/24\n198.51.100.0/25\n", encoding="utf-8")
    into = tmp_path / "cdn-ranges.json"
    runner = CliRunner()
    done = runner.invoke(
        hosting_group,
        ["cdn-ranges", "--provider", "cloudflare", "--kind", "plain", "--from", str(listing), "--into", str(into)],
    )
    assert done.exit_code == 0, done.output
    written = CDNRanges.load(into)
    assert written.match("198.51.100.9").name == "Cloudflare"  # type: ignore[union-attr]
    assert written.match("104.16.0.1") is None  # Cloudflare's old ranges are replaced, not kept.
    assert written.match("151.101.1.1").name == "Fastly"  # type: ignore[union-attr]
    assert written.updated == dt.date.today()
    garbage = tmp_path / "garbage"
    garbage.write_text("<html>rate limited</html>", encoding="utf-8")
    refused = runner.invoke(
        hosting_group,
        ["cdn-ranges", "--provider", "Cloudflare", "--kind", "plain", "--from", str(garbage), "--into", str(into)],
    )
    assert refused.exit_code == 2 and "Invalid value for --from" in refused.output and "Traceback" not in refused.output
    assert CDNRanges.load(into).match("198.51.100.9") is not None  # The list on disk is untouched.
