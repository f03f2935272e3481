"""Answering a member's prefix lookup (docs/protocol.md section 16).

A member sends only the first 20 bits (5 hex characters) of each URL fingerprint and content hash it
wants to check, mixed with decoys. For each prefix the exchange returns every confirmed case, and every
content hash of a confirmed case, that starts with it; the member compares the full values itself. The
exchange therefore learns a set of 20-bit prefixes, not which URL an analyst is looking at: among the
prefixes of a request, it cannot tell the real from the decoys, and behind a prefix stand on average
(known locations ÷ 2²⁰) known locations and an unbounded number of unknown URLs.

Both lookups are range scans on primary-key indexes (``locations.url_fingerprint``,
``case_hashes(alg, value)``): ``prefix <= value < prefix || 'g'`` ('g' sorts after every hex digit),
so their cost grows with the answer, not with the ten million rows behind it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select

import schemas
from exchange.cases.models import CONFIRMED, Case, CaseHash, Location
from federation.messages import format_timestamp
from service.database import DBSession

PREFIX_LENGTH = 5
MAX_PER_PREFIX = 200
MAX_LOCATIONS_PER_HASH = 20


def _range(prefix: str) -> tuple[str, str]:
    return prefix, prefix + "g"


def _status(case: Case) -> tuple[str, str | None]:
    if case.status:
        return case.status, format_timestamp(case.status_at) if case.status_at else None
    return "received", format_timestamp(case.received_at) if case.received_at else None


def answer_lookup(session: DBSession, unverified: Any) -> dict[str, Any]:
    """The confirmed locations and hashes under the request's prefixes.

    Raises:
        SchemaValidationError: the request is not a lookup request.
    """
    # 1. The request is a lookup request (prefixes of exactly five lowercase hex digits, at most 64 each).
    schemas.validate("lookup-request", unverified)
    truncated = False
    locations: list[dict[str, Any]] = []
    # 2. Every confirmed case at a location under each URL prefix.
    for prefix in unverified["url_prefixes"]:
        low, high = _range(prefix)
        rows = session.execute(
            select(Case)
            .join(Location, Location.case_id == Case.id)
            .where(Location.url_fingerprint >= low, Location.url_fingerprint < high, Case.state == CONFIRMED)
            .order_by(Location.url_fingerprint)
            .limit(MAX_PER_PREFIX + 1)
        ).scalars()
        found = list(rows)
        truncated = truncated or len(found) > MAX_PER_PREFIX
        for case in found[:MAX_PER_PREFIX]:
            status, status_at = _status(case)
            locations.append(
                {
                    "url_fingerprint": case.url_fingerprint,
                    "legal_status": case.legal_status,
                    "hosting_country": case.hosting_country,
                    "destination": case.destination,
                    "first_reported_at": format_timestamp(case.confirmed_at),
                    "status": status,
                    "status_at": status_at,
                }
            )
    # 3. Every content hash of a confirmed case under each hash prefix, with the cases that hold it.
    hashes: list[dict[str, Any]] = []
    for item in unverified["hash_prefixes"]:
        low, high = _range(item["prefix"])
        pairs = session.execute(
            select(CaseHash.value, Case)
            .join(Case, and_(Case.id == CaseHash.case_id, Case.state == CONFIRMED))
            .where(CaseHash.alg == item["alg"], CaseHash.value >= low, CaseHash.value < high)
            .order_by(CaseHash.value)
            .limit(MAX_PER_PREFIX + 1)
        ).all()
        truncated = truncated or len(pairs) > MAX_PER_PREFIX
        grouped: dict[str, list[dict[str, str]]] = {}
        for value, case in pairs[:MAX_PER_PREFIX]:
            entries = grouped.setdefault(value, [])
            if len(entries) < MAX_LOCATIONS_PER_HASH:
                entries.append(
                    {
                        "legal_status": case.legal_status,
                        "hosting_country": case.hosting_country,
                        "status": _status(case)[0],
                    }
                )
        hashes.extend({"alg": item["alg"], "value": value, "locations": found} for value, found in grouped.items())
    return {"prefix_length": PREFIX_LENGTH, "locations": locations, "hashes": hashes, "truncated": truncated}
