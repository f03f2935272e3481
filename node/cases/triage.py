"""Triage: before anyone opens a reported URL, ask whether it, or its material, is already known.

Two places know things. **Here**: a report this hotline already forwarded for the same location, a case
received from abroad for it, another case of ours with the same content hashes. **The network**: the
exchange's confirmed cases, asked privately (docs/protocol.md section 16): the node sends the first
five hex characters of the URL fingerprint and of each content hash, each mixed with three random
decoy prefixes, and compares the full values in the answer itself. The exchange learns which 20-bit
buckets were asked about, not which URL; nothing is learnt about a URL the network does not know.

The answer is kept on the case (``Case.triage``) and sets ``Case.known``: the case page then warns
before the URL can be opened, and says how the location or material was assessed, where it was sent
and whether it was removed.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

import schemas
from federation.errors import ProtocolError
from federation.runtime import Runtime
from node.cases.models import NEW, Case, CaseHash
from node.intake.models import Submission
from node.received.models import InboundCase
from node.reports.models import Report
from service.database import DBSession, pair_params, pairs_in

log = logging.getLogger(__name__)

PREFIX_LENGTH = 5
DECOYS = 3
MAX_PREFIXES = 64
REAL_PER_REQUEST = MAX_PREFIXES // (DECOYS + 1)
CASES_PER_REQUEST = 12


class LookupError(ProtocolError):
    status = 503
    code = "lookup_unavailable"


def case_hashes(session: DBSession, case: Case) -> list[tuple[str, str]]:
    """Every content hash known for the case: from its assessment and from what reporters sent."""
    found: list[tuple[str, str]] = []
    for item in (case.assessment or {}).get("content_hashes", []):
        found.append((item["alg"], item["value"]))
    for hashes in session.scalars(select(Submission.content_hashes).where(Submission.case_id == case.id)):
        for item in hashes or []:
            found.append((item["alg"], item["value"]))
    return sorted(set(found))


def _decoy(rng: random.Random) -> str:
    return f"{rng.getrandbits(4 * PREFIX_LENGTH):0{PREFIX_LENGTH}x}"


@dataclass
class LookupRequest:
    body: dict[str, Any]
    real_url_prefixes: set[str]
    real_hash_prefixes: set[tuple[str, str]]


def build_request(
    fingerprints: list[str], hashes: list[tuple[str, str]], rng: random.Random | None = None
) -> LookupRequest:
    """The request for these values: their prefixes, each hidden among ``DECOYS`` random ones, shuffled."""
    # Decoys must be unpredictable to the exchange: drawn from the OS's generator (tests pass a seeded one).
    rng = rng or random.SystemRandom()
    url_real = {fp[:PREFIX_LENGTH] for fp in fingerprints}
    hash_real = {(alg, value[:PREFIX_LENGTH]) for alg, value in hashes}
    url_all = set(url_real)
    while len(url_all) < min(MAX_PREFIXES, len(url_real) * (DECOYS + 1)):
        url_all.add(_decoy(rng))
    hash_all = set(hash_real)
    algs = sorted({alg for alg, _ in hash_real}) or ["sha256"]
    while len(hash_all) < min(MAX_PREFIXES, len(hash_real) * (DECOYS + 1)):
        hash_all.add((rng.choice(algs), _decoy(rng)))
    url_list, hash_list = sorted(url_all), sorted(hash_all)
    rng.shuffle(url_list)
    rng.shuffle(hash_list)
    body = {"url_prefixes": url_list, "hash_prefixes": [{"alg": alg, "prefix": p} for alg, p in hash_list]}
    return LookupRequest(body=body, real_url_prefixes=url_real, real_hash_prefixes=hash_real)


def match(answer: dict[str, Any], fingerprint: str, hashes: list[tuple[str, str]]) -> dict[str, Any]:
    """What the answer says about one location and its hashes: full values compared here, never there."""
    location = next((entry for entry in answer["locations"] if entry["url_fingerprint"] == fingerprint), None)
    wanted = set(hashes)
    material = [entry for entry in answer["hashes"] if (entry["alg"], entry["value"]) in wanted]
    return {"location": location, "material": material}


def known_here(session: DBSession, case: Case, hashes: list[tuple[str, str]]) -> dict[str, Any]:
    """What this hotline already did with the location or its material."""
    sent = [
        {"report_id": r.id, "state": r.state, "destination": r.destination, "at": r.confirmed_at.isoformat()}
        for r in session.scalars(select(Report).where(Report.url_fingerprint == case.url_fingerprint).limit(5))
    ]
    received = [
        {"case_id": c.id, "origin": c.origin, "status": c.status, "legal_status": c.legal_status}
        for c in session.scalars(
            select(InboundCase).where(InboundCase.url_fingerprint == case.url_fingerprint).limit(5)
        )
    ]
    material: list[dict[str, Any]] = []
    if hashes:
        wanted = pairs_in(CaseHash.alg, CaseHash.value, "hashes")
        for other in session.scalars(
            select(Case)
            .where(Case.id != case.id, Case.id.in_(select(CaseHash.case_id).where(wanted)))
            .order_by(Case.assessed_at.desc())
            .limit(5),
            pair_params("hashes", hashes),
        ):
            material.append({"case_id": other.id, "legal_status": other.legal_status, "state": other.state})
    return {"sent": sent, "received": received, "material": material}


def ask_network(rt: Runtime, exchange_id: str, exchange_url: str, request: LookupRequest) -> dict[str, Any]:
    """POST the request to the exchange; its answer, checked against the schema.

    Raises:
        LookupError: the exchange could not be reached or did not answer with a lookup answer.
    """
    try:
        status, body = rt.transport.post_json(
            f"{exchange_url.rstrip('/')}/v1/lookup", request.body, destination=exchange_id, channel="lookup"
        )
    except ProtocolError as exc:
        raise LookupError(f"the exchange could not be asked: {exc.message}") from exc
    if status != 200:
        code = body.get("error") if isinstance(body, dict) else None
        raise LookupError(f"the exchange refused the lookup (HTTP {status}, {code or 'no code'})")
    try:
        schemas.validate("lookup-answer", body)
    except schemas.SchemaValidationError as exc:
        raise LookupError(f"the exchange's answer is not a lookup answer: {exc.message}") from exc
    answer: dict[str, Any] = body
    return answer


def ask_in_chunks(
    rt: Runtime, exchange_id: str, exchange_url: str, fingerprints: list[str], hashes: list[tuple[str, str]]
) -> dict[str, Any]:
    """Ask about any number of values, ``REAL_PER_REQUEST`` real prefixes of each kind per request (so
    every request keeps its decoys within the schema's 64); the answers merged."""
    merged: dict[str, Any] = {"locations": [], "hashes": [], "truncated": False}
    url_prefixes = sorted({fp[:PREFIX_LENGTH] for fp in fingerprints})
    hash_prefixes = sorted({(alg, value[:PREFIX_LENGTH]) for alg, value in hashes})
    rounds = max(1, -(-max(len(url_prefixes), len(hash_prefixes)) // REAL_PER_REQUEST))
    for number in range(rounds):
        chunk = slice(number * REAL_PER_REQUEST, (number + 1) * REAL_PER_REQUEST)
        wanted_urls = {p for p in url_prefixes[chunk]}
        wanted_hashes = set(hash_prefixes[chunk])
        request = build_request(
            [fp for fp in fingerprints if fp[:PREFIX_LENGTH] in wanted_urls],
            [(alg, value) for alg, value in hashes if (alg, value[:PREFIX_LENGTH]) in wanted_hashes],
        )
        answer = ask_network(rt, exchange_id, exchange_url, request)
        merged["locations"] += answer["locations"]
        merged["hashes"] += answer["hashes"]
        merged["truncated"] = merged["truncated"] or answer["truncated"]
    return merged


def triage(
    rt: Runtime, session: DBSession, cases: list[Case], *, exchange_id: str, exchange_url: str, now: dt.datetime
) -> None:
    """Ask about ``cases`` (here and, privately, the network) and keep each answer on its case.

    Network I/O happens between two units of work: the caller commits before, and after.
    """
    from node.cases.services import CaseBook

    wanted = {case.id: case_hashes(session, case) for case in cases}
    answer: dict[str, Any] | None = None
    error = None
    try:
        answer = ask_in_chunks(
            rt,
            exchange_id,
            exchange_url,
            [case.url_fingerprint for case in cases],
            sorted({h for hs in wanted.values() for h in hs}),
        )
    except LookupError as exc:
        error = exc.message
        log.warning("triage: %s", error)
    book = CaseBook(session, actor="system", now=now)
    for case in cases:
        here = known_here(session, case, wanted[case.id])
        network = match(answer, case.url_fingerprint, wanted[case.id]) if answer else None
        book.record_triage(case, {"asked_at": now.isoformat(), "error": error, "network": network, "here": here})


def untriaged(session: DBSession, limit: int = CASES_PER_REQUEST) -> list[Case]:
    return list(
        session.scalars(
            select(Case)
            .where(Case.triaged_at.is_(None), Case.state == NEW)
            .order_by(Case.first_reported_at)
            .limit(limit)
        )
    )
