"""Answering a member's prefix lookup (docs/protocol.md section 16).

A member sends only the first 20 bits (5 hex characters) of each URL fingerprint and content hash it
wants to check, mixed with decoys. For each prefix the exchange returns every confirmed case, and every
content hash of a confirmed case, that starts with it; the member compares the full values itself. The
exchange therefore learns a set of 20-bit prefixes, not which URL an analyst is looking at: among the
prefixes of a request, it cannot tell the real from the decoys, and behind a prefix stand on average
(known locations ÷ 2²⁰) known locations and an unbounded number of unknown URLs.

Both lookups are range scans on primary-key indexes (``locations.url_fingerprint``,
``case_hashes(alg, value)``): ``prefix <= value < prefix || 'g'`` ('g' sorts after every hex digit),
so their cost grows with the answer, not with the ten million rows behind it; all the prefixes of one
kind go in one statement.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import and_, bindparam, or_, select

import schemas
from exchange.cases.models import CONFIRMED, Case, CaseHash, Location
from federation.messages import format_timestamp
from service.database import DBSession

PREFIX_LENGTH = 5
MAX_PER_PREFIX = 200
MAX_LOCATIONS_PER_HASH = 20


def _range(prefix: str) -> tuple[str, str]:
    return prefix, prefix + "g"


def _status(status: str | None, status_at: Any, received_at: Any) -> tuple[str, str | None]:
    if status:
        return status, format_timestamp(status_at) if status_at else None
    return "received", format_timestamp(received_at) if received_at else None


def _capped(rows: list[Any], prefix_of: Any, *, limit: int) -> tuple[list[Any], bool]:
    """At most ``MAX_PER_PREFIX`` rows per prefix (rows come sorted by value, so a prefix's rows are
    together); whether any prefix, or the statement's own ``limit``, held more."""
    kept: list[Any] = []
    counts: dict[str, int] = {}
    truncated = len(rows) > limit
    for row in rows[:limit]:
        prefix = prefix_of(row)
        counts[prefix] = counts.get(prefix, 0) + 1
        if counts[prefix] > MAX_PER_PREFIX:
            truncated = True
            continue
        kept.append(row)
    return kept, truncated


@functools.lru_cache(maxsize=128)
def _locations_statement(count: int) -> Any:
    """``url_fingerprint`` and ``case_id`` under ``count`` prefixes (bound as ``l0``/``h0``, ...), built
    once per count: building 64 range conditions costs more than running them."""
    ranges = [
        and_(Location.url_fingerprint >= bindparam(f"l{n}"), Location.url_fingerprint < bindparam(f"h{n}"))
        for n in range(count)
    ]
    return select(Location.url_fingerprint, Location.case_id).where(or_(*ranges)).limit(bindparam("limit"))


@functools.lru_cache(maxsize=128)
def _hashes_statement(count: int) -> Any:
    ranges = [
        and_(
            CaseHash.alg == bindparam(f"a{n}"),
            CaseHash.value >= bindparam(f"l{n}"),
            CaseHash.value < bindparam(f"h{n}"),
        )
        for n in range(count)
    ]
    return select(CaseHash.alg, CaseHash.value, CaseHash.case_id).where(or_(*ranges)).limit(bindparam("limit"))


def _confirmed(session: DBSession, case_ids: set[str]) -> dict[str, Any]:
    """The confirmed cases among ``case_ids``, by id (one statement on the primary key)."""
    if not case_ids:
        return {}
    rows = session.execute(
        select(
            Case.id,
            Case.legal_status,
            Case.hosting_country,
            Case.destination,
            Case.confirmed_at,
            Case.status,
            Case.status_at,
            Case.received_at,
        ).where(Case.id.in_(sorted(case_ids)), Case.state == CONFIRMED)
    ).all()
    return {row[0]: row for row in rows}


def answer_lookup(session: DBSession, unverified: Any) -> dict[str, Any]:
    """The confirmed locations and hashes under the request's prefixes.

    Two statements per kind, however many prefixes: an OR of range conditions on the primary key (which
    SQLite answers with one index range scan per prefix, PostgreSQL with a bitmap OR of index scans),
    then the cases they belong to by id. No ORDER BY in the first: it would tempt a planner into walking
    the whole index in order; the few rows are sorted here.

    Raises:
        SchemaValidationError: the request is not a lookup request.
    """
    # 1. The request is a lookup request (prefixes of exactly five lowercase hex digits, at most 64 each).
    schemas.validate("lookup-request", unverified)
    truncated = False
    locations: list[dict[str, Any]] = []
    url_prefixes: list[str] = unverified["url_prefixes"]
    # 2. Every confirmed case at a location under one of the URL prefixes.
    if url_prefixes:
        limit = len(url_prefixes) * MAX_PER_PREFIX
        params: dict[str, Any] = {"limit": limit + 1}
        for n, prefix in enumerate(url_prefixes):
            params[f"l{n}"], params[f"h{n}"] = _range(prefix)
        under = sorted((row[0], row[1]) for row in session.execute(_locations_statement(len(url_prefixes)), params))
        cases = _confirmed(session, {case_id for _, case_id in under})
        found = [(fingerprint, case_id) for fingerprint, case_id in under if case_id in cases]
        kept, truncated = _capped(found, lambda row: row[0][:PREFIX_LENGTH], limit=limit)
        for fingerprint, case_id in kept:
            _, legal, country, destination, confirmed_at, status, status_at, received_at = cases[case_id]
            shown, shown_at = _status(status, status_at, received_at)
            locations.append(
                {
                    "url_fingerprint": fingerprint,
                    "legal_status": legal,
                    "hosting_country": country,
                    "destination": destination,
                    "first_reported_at": format_timestamp(confirmed_at),
                    "status": shown,
                    "status_at": shown_at,
                }
            )
    # 3. Every content hash of a confirmed case under one of the hash prefixes, with the cases that hold it.
    hashes: list[dict[str, Any]] = []
    hash_prefixes: list[dict[str, str]] = unverified["hash_prefixes"]
    if hash_prefixes:
        limit = len(hash_prefixes) * MAX_PER_PREFIX
        params = {"limit": limit + 1}
        for n, item in enumerate(hash_prefixes):
            params[f"a{n}"] = item["alg"]
            params[f"l{n}"], params[f"h{n}"] = _range(item["prefix"])
        held = sorted(session.execute(_hashes_statement(len(hash_prefixes)), params).all())
        cases = _confirmed(session, {case_id for _, _, case_id in held})
        held = [row for row in held if row[2] in cases]
        kept_held, cut = _capped(held, lambda row: f"{row[0]}:{row[1][:PREFIX_LENGTH]}", limit=limit)
        truncated = truncated or cut
        grouped: dict[tuple[str, str], list[dict[str, str]]] = {}
        for alg, value, case_id in kept_held:
            entries = grouped.setdefault((alg, value), [])
            if len(entries) < MAX_LOCATIONS_PER_HASH:
                row = cases[case_id]
                entries.append({"legal_status": row[1], "hosting_country": row[2], "status": row[5] or "received"})
        hashes.extend({"alg": alg, "value": value, "locations": found} for (alg, value), found in grouped.items())
    return {"prefix_length": PREFIX_LENGTH, "locations": locations, "hashes": hashes, "truncated": truncated}
