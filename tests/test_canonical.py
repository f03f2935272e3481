"""Tests for the URL canonicalisation and fingerprint rules that every node must compute identically.

The vector file is the contract: other implementations run the same file, so these tests check the file
against the code and also check the file against itself (each fingerprint is the SHA-256 of its canonical
URL). The Hypothesis properties cover what a finite list cannot: idempotence, that nothing which should be
escaped survives, that an escaped URL and its unescaped spelling meet, and that no exception other than
InvalidURLError ever escapes.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from federation.canonical import (
    MAX_URL_LENGTH,
    InvalidURLError,
    canonical_fingerprint,
    canonicalize_url,
    url_fingerprint,
)
from federation.errors import ProtocolError

VECTORS_PATH = Path(__file__).parent / "vectors" / "url-canonicalisation.json"


def _load_vectors() -> dict[str, Any]:
    with VECTORS_PATH.open(encoding="utf-8") as vector_file:
        vectors: dict[str, Any] = json.load(vector_file)
    return vectors


VECTORS = _load_vectors()
VALID = [pytest.param(vector, id=vector["input"][:60]) for vector in VECTORS["valid"]]
INVALID = [pytest.param(vector, id=vector["input"][:60]) for vector in VECTORS["invalid"]]

# The deadline is off because the first IDNA call loads the UTS #46 tables, which is slow once and fast
# afterwards; a timing is not what these properties test.
PROPERTY_SETTINGS = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])

_ESCAPE = re.compile(r"%(.{0,2})", re.DOTALL)
_CANONICAL_SHAPE = re.compile(
    r"(?P<scheme>https?|ftp)://(?P<host>[^/?:\[\]]+|\[[0-9a-f:]+\])(?::(?P<port>[0-9]+))?"
    r"(?P<path>/[^?]*)(?:\?(?P<query>.*))?",
    re.DOTALL,
)
_DEFAULT_PORTS = {"http": "80", "https": "443", "ftp": "21"}
_C0_AND_SPACE = "".join(chr(code) for code in range(0x21))


def assert_canonical_form(canonical: str) -> None:
    """Fail unless ``canonical`` has the shape, the escaping and the path form the rules promise."""
    assert len(canonical) <= MAX_URL_LENGTH
    # Only printable ASCII other than '#' may appear literally: everything else must have been escaped.
    leftovers = [char for char in canonical if not "\x21" <= char <= "\x7e" or char == "#"]
    assert leftovers == [], canonical
    # Every '%' starts an escape, and escapes use uppercase hex.
    assert all(re.fullmatch("[0-9A-F]{2}", digits) for digits in _ESCAPE.findall(canonical)), canonical
    match = _CANONICAL_SHAPE.fullmatch(canonical)
    assert match is not None, canonical
    host = match["host"]
    assert host == host.lower(), canonical
    assert not host.startswith(".") and not host.endswith(".") and ".." not in host, canonical
    port = match["port"]
    if port is not None:
        assert port == str(int(port)) and port != _DEFAULT_PORTS[match["scheme"]], canonical
    # Inside the path there are no empty, '.' or '..' segments; only a trailing slash is allowed.
    segments = match["path"].split("/")[1:]
    assert all(segment not in ("", ".", "..") for segment in segments[:-1]), canonical
    assert segments[-1] not in (".", ".."), canonical


# --- The vector file.


def test_vector_file_has_enough_cases() -> None:
    assert len(VECTORS["valid"]) >= 40
    assert len(VECTORS["invalid"]) >= 10
    sources = {vector["source"] for vector in VECTORS["valid"] + VECTORS["invalid"]}
    assert sources <= set(VECTORS["sources"])


@pytest.mark.parametrize("vector", VALID)
def test_vector_fingerprint_is_sha256_of_its_canonical_url(vector: dict[str, str]) -> None:
    # This checks the file, not the code: another implementation trusts both columns.
    assert vector["fingerprint"] == hashlib.sha256(vector["canonical"].encode("utf-8")).hexdigest()


@pytest.mark.parametrize("vector", VALID)
def test_valid_vector_canonicalises_as_published(vector: dict[str, str]) -> None:
    assert canonicalize_url(vector["input"]) == vector["canonical"]


@pytest.mark.parametrize("vector", VALID)
def test_valid_vector_fingerprint(vector: dict[str, str]) -> None:
    fingerprint = url_fingerprint(vector["input"])
    assert fingerprint == vector["fingerprint"]
    assert canonical_fingerprint(vector["canonical"]) == fingerprint
    assert re.fullmatch("[0-9a-f]{64}", fingerprint)


@pytest.mark.parametrize("vector", VALID)
def test_canonical_vector_is_a_fixed_point(vector: dict[str, str]) -> None:
    assert canonicalize_url(vector["canonical"]) == vector["canonical"]
    assert_canonical_form(vector["canonical"])


@pytest.mark.parametrize("vector", INVALID)
def test_invalid_vector_is_refused(vector: dict[str, str]) -> None:
    with pytest.raises(InvalidURLError) as refusal:
        canonicalize_url(vector["input"])
    assert refusal.value.code == "invalid_url"
    assert refusal.value.status == 400
    with pytest.raises(InvalidURLError):
        url_fingerprint(vector["input"])


# --- Refusals that a JSON vector file cannot express.


def test_invalid_url_error_is_a_protocol_error() -> None:
    error = InvalidURLError("The URL has no host.")
    assert isinstance(error, ProtocolError)
    assert error.to_dict() == {"error": "invalid_url", "message": "The URL has no host."}


@pytest.mark.parametrize("not_a_string", [None, b"http://example.com/", 42])
def test_non_string_input_is_refused(not_a_string: object) -> None:
    with pytest.raises(InvalidURLError):
        canonicalize_url(not_a_string)  # type: ignore[arg-type]


def test_lone_surrogate_is_refused_not_a_unicode_error() -> None:
    with pytest.raises(InvalidURLError):
        canonicalize_url("http://example.com/\ud800")


def test_input_of_exactly_the_maximum_length_is_accepted() -> None:
    url = "http://example.com/" + "a" * (MAX_URL_LENGTH - len("http://example.com/"))
    assert canonicalize_url(url) == url


def test_refusal_message_does_not_quote_the_url() -> None:
    # A refused URL may still be a live abuse URL, and messages reach logs and peers.
    for url in ("http://secret-name.\u2603/", "http://secret-name:99999/", "http://[secret-name]/"):
        with pytest.raises(InvalidURLError) as refusal:
            canonicalize_url(url)
        assert "secret" not in refusal.value.message


# --- Properties.

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ascii_labels = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(_LETTERS),
    st.text(alphabet=_LETTERS + "0123456789-_", max_size=8),
)
_unicode_labels = st.builds(
    lambda before, letter, after: before + letter + after,
    st.text(alphabet="abcxyz", max_size=3),
    st.sampled_from("\u00fc\u00df\u00e9\u00f1\u4f8b\u3048\u00dc\uff41"),
    st.text(alphabet="abcxyz\u00fc\u00e9", max_size=3),
)
_domains = st.builds(
    lambda labels, top, dots: dots[0] + ".".join(labels) + "." + top + dots[1],
    st.lists(st.one_of(_ascii_labels, _unicode_labels), min_size=1, max_size=3),
    st.sampled_from(["com", "example", "COM", "xn--zckzah"]),
    st.tuples(st.sampled_from(["", ".", ".."]), st.sampled_from(["", ".", "..."])),
)


def _ipv4_spellings(address: int, form: str) -> str:
    """Write an IPv4 address in one of the historical forms that browsers still accept."""
    octets = address.to_bytes(4, "big")
    if form == "decimal":
        return str(address)
    if form == "hex":
        return ".".join(f"0x{octet:x}" for octet in octets)
    if form == "octal":
        return ".".join(f"0{octet:o}" for octet in octets)
    if form == "two-part":
        return f"{octets[0]}.{int.from_bytes(octets[1:], 'big')}"
    return ".".join(str(octet) for octet in octets)


_ipv4_hosts = st.builds(
    _ipv4_spellings,
    st.integers(min_value=0, max_value=2**32 - 1),
    st.sampled_from(["dotted", "decimal", "hex", "octal", "two-part"]),
)


def _ipv6_literal(number: int, exploded: bool, upper: bool) -> str:
    """Write an IPv6 address in brackets, in full or compressed form, in either case."""
    address = ipaddress.IPv6Address(number)
    text = address.exploded if exploded else address.compressed
    return "[" + (text.upper() if upper else text) + "]"


_ipv6_hosts = st.builds(
    _ipv6_literal,
    # Small numbers give the zero-heavy addresses (::1, ::a:b) where compression rules matter, and the
    # third kind are IPv4-mapped addresses, which become IPv4.
    st.one_of(
        st.integers(min_value=0, max_value=2**128 - 1),
        st.integers(min_value=0, max_value=2**40),
        st.integers(min_value=0, max_value=2**32 - 1).map(lambda ipv4: (0xFFFF << 32) | ipv4),
    ),
    st.booleans(),
    st.booleans(),
)
_escapes = st.sampled_from(
    ["%25", "%2F", "%2f", "%3F", "%23", "%00", "%20", "%C3%BC", "%c3%bc", "%zz", "%", "%2525", "%2e", "%7F"]
)
_PATH_ALPHABET = _LETTERS + "0123456789-._~!$&'()*+,;=:@ \\\u00fc\x00\x7f\u4f8b"


def _url_strategy(*, messy: bool) -> st.SearchStrategy[str]:
    """Build URLs from parts; ``messy`` adds surrounding whitespace, tabs and fragments."""
    path_text = st.text(alphabet=_PATH_ALPHABET + ("\t" if messy else ""), max_size=6)
    segments = st.one_of(st.sampled_from(["", ".", "..", "%2e", "%2E%2e"]), path_text, _escapes)
    paths = st.lists(segments, max_size=6).map(lambda parts: "".join("/" + part for part in parts))
    queries = st.one_of(
        st.just(""),
        st.lists(st.one_of(path_text, _escapes, st.sampled_from(["/", "?", "/../", "//"])), max_size=5).map(
            lambda parts: "?" + "".join(parts)
        ),
    )
    spaces = st.sampled_from(["", " ", "\t"]) if messy else st.just("")
    fragments = st.just("")
    if messy:
        fragments = st.one_of(fragments, st.text(max_size=5).map(lambda text: "#" + text))
    return st.builds(
        lambda space, scheme, userinfo, host, port, path, query, fragment: (
            space + scheme + userinfo + host + port + path + query + fragment + space
        ),
        spaces,
        st.sampled_from(["http://", "https://", "ftp://", "HTTP://", "HtTpS://", "", "//"]),
        st.one_of(st.just(""), st.sampled_from(["user@", "user:pass@", "a%40b:c@", "@"])),
        st.one_of(_domains, _ipv4_hosts, _ipv6_hosts),
        st.one_of(st.just(""), st.just(":"), st.integers(0, 65535).map(lambda port: f":{port}")),
        paths,
        queries,
        fragments,
    )


urls = _url_strategy(messy=True)
plain_urls = _url_strategy(messy=False)


def _canonicalize_or_skip(url: str) -> str:
    """Canonicalise ``url``, telling Hypothesis to discard it if the rules refuse it."""
    try:
        return canonicalize_url(url)
    except InvalidURLError:
        assume(False)
        raise


@PROPERTY_SETTINGS
@given(urls)
def test_canonicalisation_is_idempotent(url: str) -> None:
    canonical = _canonicalize_or_skip(url)
    assert canonicalize_url(canonical) == canonical
    assert url_fingerprint(canonical) == url_fingerprint(url) == canonical_fingerprint(canonical)


@PROPERTY_SETTINGS
@given(urls)
def test_canonical_url_has_nothing_left_to_escape(url: str) -> None:
    assert_canonical_form(_canonicalize_or_skip(url))


@PROPERTY_SETTINGS
@given(
    st.integers(min_value=0, max_value=2**32 - 1),
    st.sampled_from(["dotted", "decimal", "hex", "octal", "two-part", "mapped-ipv6"]),
)
def test_every_spelling_of_an_ipv4_address_meets(address: int, form: str) -> None:
    if form == "mapped-ipv6":
        host = _ipv6_literal((0xFFFF << 32) | address, exploded=False, upper=False)
    else:
        host = _ipv4_spellings(address, form)
    assert canonicalize_url(f"http://{host}/") == f"http://{ipaddress.IPv4Address(address)}/"


@PROPERTY_SETTINGS
@given(plain_urls)
def test_escaping_the_whole_url_does_not_change_its_fingerprint(url: str) -> None:
    # The same URL is often reported once as typed and once fully escaped by some tool; both must meet.
    # Tab, CR, LF, '#' and surrounding controls or spaces act before unescaping, so plain_urls has no tab,
    # CR, LF or '#', and a URL whose path happens to end in a space or NUL is discarded.
    assume(url == url.strip(_C0_AND_SPACE))
    canonical = _canonicalize_or_skip(url)
    assert canonicalize_url(quote(url, safe="")) == canonical


@PROPERTY_SETTINGS
@given(st.one_of(st.text(), st.text().map(lambda t: "http://" + t), st.text().map(lambda t: t + "/")))
def test_arbitrary_text_is_canonicalised_or_refused_cleanly(text: str) -> None:
    # Whatever arrives, the only failure a caller can see is InvalidURLError, never a raw library error.
    try:
        canonical = canonicalize_url(text)
    except InvalidURLError:
        return
    assert canonicalize_url(canonical) == canonical
    assert_canonical_form(canonical)


@PROPERTY_SETTINGS
@given(st.text(alphabet=st.characters(exclude_categories=()), max_size=40))
def test_text_with_surrogates_is_refused_cleanly(text: str) -> None:
    try:
        canonical = canonicalize_url("http://example.com/" + text)
    except InvalidURLError:
        return
    assert canonicalize_url(canonical) == canonical
