"""URL canonicalisation and URL fingerprints: a wire contract between every node and the exchange.

The same abusive page reaches the network through many spellings of its URL: ``HTTP://Example.COM:80/a/./b``,
``example.com/a/b#top``, ``http://user@example.com/a//b``, ``http://example.com/%61/b``. Hotlines must see
those as one report, or two analysts assess the same material and two notices go to the same host. So every
node reduces a reported URL to one *canonical* string and hashes it; the exchange deduplicates, routes and
reports status by that *fingerprint* alone and never sees the URL itself.

The rules are Google Safe Browsing's canonicalisation (the v4 "URLs and Hashing" page), because they are
published, have test cases, and have been implemented many times in many languages. We depart from them
where a hotline needs a different answer than a malware blocklist does, and each departure is numbered in
``docs/url-canonicalisation.md``: the scheme, the query and a non-default port are kept (they name different
resources), the user name and password are dropped (they never do), internationalised host names become
IDNA 2008 A-labels, IPv6 literals are compressed, and a host that no browser could resolve is refused
instead of being escaped.

Two invariants make this a contract rather than a helper:

1. **Idempotence.** ``canonicalize_url(canonicalize_url(u)) == canonicalize_url(u)`` for every accepted
   ``u``. A canonical URL may be stored, forwarded and canonicalised again by a peer, and must not drift.
   Every step below is chosen so that its output is a fixed point of the whole pipeline (for instance the
   length limit is checked on the output as well as the input, so no canonical URL is ever refused).
2. **Agreement.** Every implementation, in any language, must produce byte-identical output. Nothing here
   may depend on the platform, the locale, the resolver or the network. The vectors in
   ``tests/vectors/url-canonicalisation.json`` are the arbiter: a change that alters any of them changes
   the protocol and every member's fingerprints.

The pipeline works on UTF-8 bytes after the first few steps, because percent-escapes decode to bytes that
need not be valid UTF-8; only the host is decoded back to text, for IDNA. Input that cannot be reduced to a
canonical URL raises :class:`InvalidURLError` (a :class:`~federation.errors.ProtocolError`), never a raw
``ValueError`` or ``UnicodeError``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final
from urllib.parse import quote_from_bytes, unquote_to_bytes

import idna

from federation.errors import ProtocolError

__all__ = ["MAX_URL_LENGTH", "InvalidURLError", "canonical_fingerprint", "canonicalize_url", "url_fingerprint"]

MAX_URL_LENGTH: Final = 8192
"""The longest input, and the longest canonical URL, that is accepted (in characters)."""

DEFAULT_PORTS: Final[Mapping[str, int]] = MappingProxyType({"http": 80, "https": 443, "ftp": 21})
"""The supported schemes and the port that each implies when none is written."""

# Characters that Safe Browsing removes anywhere in the URL before anything else. Their escaped forms
# (%09, %0D, %0A) are data and are kept.
_REMOVED_CHARACTERS: Final = {ord("\t"): None, ord("\r"): None, ord("\n"): None}

# Leading and trailing C0 controls and spaces are stripped, as browsers do when a URL is pasted.
_SURROUNDING_WHITESPACE: Final = "".join(chr(code) for code in range(0x21))

# Every printable ASCII byte except '#' and '%' stays literal; everything else is written as %XX. These
# are exactly the bytes Safe Browsing escapes: <= 0x20, >= 0x7F, '#' and '%'.
_LITERAL_BYTES: Final = bytes(code for code in range(0x21, 0x7F) if code not in b"#%")

_SCHEME: Final = re.compile(rb"([A-Za-z][A-Za-z0-9+.\-]*):")
_PORT_AFTER_COLON: Final = re.compile(rb"[0-9]+(?:[/?]|\Z)")
_DOT_RUNS: Final = re.compile(r"\.{2,}")

# The WHATWG URL Standard's "forbidden domain code points": a browser refuses a host containing any of
# them, so such a URL names nothing that can be hosted and therefore nothing a hotline could take down.
_FORBIDDEN_HOST_CHARACTERS: Final = frozenset(
    [chr(code) for code in range(0x21)] + list("#%/:<>?@[\\]^|") + [chr(0x7F)]
)

_DECIMAL_DIGITS: Final = frozenset("0123456789")
_OCTAL_DIGITS: Final = frozenset("01234567")
_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")

# An IPv4 number longer than this (after its leading zeros) exceeds 32 bits in every base; refusing it
# before int() also keeps Python's limit on long integer strings from raising a ValueError of its own.
_MAX_IPV4_NUMBER_DIGITS: Final = 11

_NAT64_PREFIX: Final = ipaddress.IPv6Network("64:ff9b::/96")


class InvalidURLError(ProtocolError):
    """The input cannot be reduced to a canonical URL, so no fingerprint can be computed for it.

    Messages say which rule refused the URL but never quote the URL or any part of it: a refused URL may
    still be a live abuse URL, and error messages end up in logs and in the peer's hands.
    """

    code = "invalid_url"
    status = 400


def url_fingerprint(url: str) -> str:
    """Return the network-wide fingerprint of ``url``.

    Args:
        url: A URL as reported, in any of the forms :func:`canonicalize_url` accepts.

    Returns:
        The lowercase hexadecimal SHA-256 digest of the UTF-8 bytes of the canonical URL (64 characters).

    Raises:
        InvalidURLError: If ``url`` cannot be canonicalised.
    """
    return canonical_fingerprint(canonicalize_url(url))


def canonical_fingerprint(canonical: str) -> str:
    """The fingerprint of a URL :func:`canonicalize_url` has already reduced, without reducing it again.

    ``url_fingerprint(url) == canonical_fingerprint(canonicalize_url(url))`` for every accepted ``url``:
    a caller that keeps the canonical URL as well (a node storing a report) canonicalises once.
    """
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def canonicalize_url(url: str) -> str:
    """Reduce ``url`` to the canonical form defined in ``docs/url-canonicalisation.md``.

    The numbered comments below are the rule numbers of that document.

    Args:
        url: A URL as reported: with or without a scheme, escaped or not, with a Unicode host or not.

    Returns:
        The canonical URL: ``scheme://host[:port]/path[?query]``, printable ASCII only.

    Raises:
        InvalidURLError: If ``url`` is not a string, is empty, is too long, has an unsupported scheme, has
            no host or an unparsable host or port, or if its canonical form would be too long.
    """
    # 1. Refuse anything that is not a string or is too long, before doing any work on it.
    if not isinstance(url, str):
        raise InvalidURLError("The URL must be a string.")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURLError(f"The URL is longer than {MAX_URL_LENGTH} characters.")

    # 2. Remove tab, CR and LF everywhere; 3. strip surrounding controls and spaces; 4. drop the fragment.
    text = url.translate(_REMOVED_CHARACTERS).strip(_SURROUNDING_WHITESPACE)
    text = text.partition("#")[0]
    if not text:
        raise InvalidURLError("The URL is empty.")

    # 5. Encode as UTF-8; 6. percent-unescape repeatedly until nothing changes.
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # Only a lone surrogate, which no real URL contains, fails to encode.
        raise InvalidURLError("The URL is not valid Unicode text.") from exc
    decoded = _unescape_fully(encoded)

    # 7. Find the scheme, or take the URL as http; 8. split authority, path and query.
    scheme, after_scheme = _split_scheme(decoded)
    authority, path, query = _split_components(after_scheme)

    # 9. Drop the user information; 10. canonicalise the host; 11. keep only a non-default port.
    host, port = _split_authority(authority)
    port_suffix = "" if port is None or port == DEFAULT_PORTS[scheme] else f":{port}"

    # 12. Normalise the path; 13. escape path and query.
    canonical = f"{scheme}://{host}{port_suffix}{_escape(_canonical_path(path))}"
    if query is not None:
        canonical += "?" + _escape(query)

    # 14. Refuse a canonical URL that is too long, so that every canonical URL is itself accepted.
    if len(canonical) > MAX_URL_LENGTH:
        raise InvalidURLError(f"The canonical URL would be longer than {MAX_URL_LENGTH} characters.")
    return canonical


def _unescape_fully(data: bytes) -> bytes:
    """Decode ``%XX`` escapes (either case of hex) repeatedly until the bytes stop changing.

    A ``%`` not followed by two hex digits is left as it is. Each pass that changes anything shortens the
    data, so the loop ends after at most ``len(data) / 2`` passes.
    """
    while True:
        unescaped = unquote_to_bytes(data)
        if unescaped == data:
            return data
        data = unescaped


def _split_scheme(decoded: bytes) -> tuple[str, bytes]:
    """Return the lowercase scheme and what follows ``scheme://``, taking a scheme-less URL as http."""
    match = _SCHEME.match(decoded)
    if match is not None:
        scheme = match.group(1).decode("ascii").lower()
        rest = decoded[match.end() :]
        if scheme in DEFAULT_PORTS:
            if not rest.startswith(b"//"):
                raise InvalidURLError(f"The URL has no '//' after '{scheme}:'.")
            return scheme, rest[2:]
        # "example.com:8080/path" has no scheme: what looks like one is a host followed by a port.
        if _PORT_AFTER_COLON.match(rest) is None:
            raise InvalidURLError(f"The scheme '{scheme}' is not supported (only http, https and ftp).")
    # A protocol-relative URL ("//host/path") already carries the authority marker.
    if decoded.startswith(b"//"):
        return "http", decoded[2:]
    return "http", decoded


def _split_components(after_scheme: bytes) -> tuple[bytes, bytes, bytes | None]:
    """Split what follows ``scheme://`` into authority, path and query (``None`` when there is no '?').

    The authority ends at the first '/' or '?', and the path at the first '?', as in a browser.
    """
    before_query, question_mark, query = after_scheme.partition(b"?")
    slash = before_query.find(b"/")
    if slash < 0:
        authority, path = before_query, b""
    else:
        authority, path = before_query[:slash], before_query[slash:]
    return authority, path, (query if question_mark else None)


def _split_authority(authority: bytes) -> tuple[str, int | None]:
    """Return the canonical host and the port (``None`` when absent) of an authority.

    User information ends at the last '@' and is dropped: it names no different resource, and it is the
    part of a URL most likely to hold a secret.
    """
    host_and_port = authority.rpartition(b"@")[2]
    # 10a. A host in brackets is an IPv6 literal; the port, if any, follows the closing bracket.
    if host_and_port.startswith(b"["):
        closing = host_and_port.find(b"]")
        if closing < 0:
            raise InvalidURLError("The IPv6 address in the host has no closing ']'.")
        after = host_and_port[closing + 1 :]
        if after and not after.startswith(b":"):
            raise InvalidURLError("Unexpected characters follow the IPv6 address in the host.")
        return _canonical_ipv6(host_and_port[1:closing]), _parse_port(after[1:])
    host, _, port = host_and_port.partition(b":")
    return _canonical_host(host), _parse_port(port)


def _parse_port(port: bytes) -> int | None:
    """Parse a port of ASCII digits; an empty port (``host:/``) counts as no port."""
    if not port:
        return None
    if not port.isdigit():
        raise InvalidURLError("The port is not a number.")
    significant = port.lstrip(b"0") or b"0"
    if len(significant) > 5 or int(significant) > 65535:
        raise InvalidURLError("The port is greater than 65535.")
    return int(significant)


def _canonical_host(raw_host: bytes) -> str:
    """Canonicalise a host that is not a bracketed IPv6 literal: a domain name or an IPv4 address."""
    # 10b. The host must be UTF-8 text, since it is a name and not opaque data.
    try:
        host = raw_host.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidURLError("The host is not valid UTF-8.") from exc

    # 10c. Lowercase an ASCII host. Map a non-ASCII host with UTS #46 (non-transitional, no STD3 rules) as
    # browsers do: that lowercases too, and also folds full-width forms and ideographic full stops, drops
    # ignorable characters and normalises to NFC, so visually identical spellings meet before the dots are
    # cleaned up. Only ASCII letters are lowercased by hand, because Unicode case mappings differ between
    # languages' libraries while the UTS #46 table is the same everywhere.
    if host.isascii():
        host = host.lower()
    else:
        try:
            host = idna.uts46_remap(host, std3_rules=False)
        except idna.IDNAError as exc:
            raise InvalidURLError("The host has a character that is not allowed in a domain name.") from exc

    # 10d. Refuse forbidden characters; 10e. trim and collapse dots.
    if any(character in _FORBIDDEN_HOST_CHARACTERS for character in host):
        raise InvalidURLError("The host contains a character that no browser accepts in a host.")
    host = _DOT_RUNS.sub(".", host).strip(".")
    if not host:
        raise InvalidURLError("The URL has no host.")

    # 10f. A host whose last label is a number is an IPv4 address, in any of its historical spellings.
    labels = host.split(".")
    if _parse_ipv4_number(labels[-1]) is not None:
        return _canonical_ipv4(labels)

    # 10g. Every non-ASCII label becomes its IDNA 2008 A-label; ASCII labels are kept as they are.
    return ".".join(label if label.isascii() else _a_label(label) for label in labels)


def _a_label(label: str) -> str:
    """Return the IDNA 2008 A-label (``xn--...``) of a non-ASCII label, as the ``idna`` package defines it."""
    try:
        return idna.alabel(label).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidURLError("The host is not a valid internationalised domain name (IDNA 2008).") from exc


def _parse_ipv4_number(part: str) -> int | None:
    """Parse one dot-separated part of an IPv4 address the way browsers do, or return ``None``.

    ``0x`` or ``0X`` introduces hexadecimal (``0x`` alone is zero), a leading ``0`` octal, and anything
    else decimal. A value too large for 32 bits comes back as ``2**32``, which every caller refuses.
    """
    if part[:2] in ("0x", "0X"):
        digits, alphabet, base = part[2:], _HEX_DIGITS, 16
        if not digits:
            return 0
    elif len(part) > 1 and part.startswith("0"):
        digits, alphabet, base = part[1:], _OCTAL_DIGITS, 8
    else:
        digits, alphabet, base = part, _DECIMAL_DIGITS, 10
    if not digits or not alphabet.issuperset(digits):
        return None
    significant = digits.lstrip("0") or "0"
    if len(significant) > _MAX_IPV4_NUMBER_DIGITS:
        return 2**32
    return int(significant, base)


def _canonical_ipv4(labels: list[str]) -> str:
    """Return the dotted-quad form of an IPv4 address written as one to four numbers.

    The last number fills all the bytes that the earlier ones leave: ``127.1`` is ``127.0.0.1`` and
    ``3279880203`` is ``195.127.0.11``. Unlike Safe Browsing, which truncates an out-of-range part
    modulo 256, an out-of-range or malformed part is refused, as browsers refuse it.
    """
    if len(labels) > 4:
        raise InvalidURLError("The host ends in a number but has more than four parts.")
    numbers = [_parse_ipv4_number(label) for label in labels]
    address = 0
    for number in numbers[:-1]:
        if number is None or number > 255:
            raise InvalidURLError("The host ends in a number but is not a valid IPv4 address.")
        address = address * 256 + number
    last = numbers[-1]
    free_bytes = 5 - len(numbers)
    if last is None or last >= 256**free_bytes:
        raise InvalidURLError("The host ends in a number but is not a valid IPv4 address.")
    address = address * 256**free_bytes + last
    return str(ipaddress.IPv4Address(address))


def _canonical_ipv6(raw_address: bytes) -> str:
    """Canonicalise the inside of a bracketed IPv6 literal.

    An IPv4-mapped address (``::ffff:0:0/96``) or a NAT64 address (``64:ff9b::/96``) names an IPv4 host
    and becomes its dotted quad, as in Safe Browsing's current rules. Any other address becomes RFC 5952
    text in brackets: lowercase hex, no leading zeros, the first longest run of two or more zero groups
    written as ``::``, and never an embedded dotted quad.
    """
    try:
        text = raw_address.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InvalidURLError("The IPv6 address in the host is not ASCII.") from exc
    # The ipaddress module accepts a zone ("fe80::1%eth0"); a zone means nothing off the local link.
    if "%" in text:
        raise InvalidURLError("The IPv6 address in the host has a zone identifier.")
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError as exc:
        raise InvalidURLError("The host is not a valid IPv6 address.") from exc
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    if address in _NAT64_PREFIX:
        return str(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return f"[{address.compressed}]"


def _canonical_path(path: bytes) -> bytes:
    """Resolve ``.`` and ``..`` segments and collapse empty ones, following RFC 3986's dot-segment rules.

    ``..`` above the root is dropped. The path ends in '/' when the input path did, or when it ended in a
    ``.`` or ``..`` segment, so ``/a/b/..`` is ``/a/``. An empty path is ``/``.
    """
    segments = path.split(b"/")[1:]
    kept: list[bytes] = []
    for segment in segments:
        if segment == b"..":
            if kept:
                kept.pop()
        elif segment not in (b"", b"."):
            kept.append(segment)
    canonical = b"/" + b"/".join(kept)
    if kept and segments[-1] in (b"", b".", b".."):
        canonical += b"/"
    return canonical


def _escape(data: bytes) -> str:
    """Write each byte <= 0x20, >= 0x7F, '#' or '%' as ``%XX`` with uppercase hex; keep the rest."""
    return quote_from_bytes(data, safe=_LITERAL_BYTES)
