"""A year of synthetic history at the demo's exchange, so every chart of the network status has something.

``make demo`` starts a network from nothing; without history its dashboard would show the walk-through's
handful of cases. :func:`seed_history` writes, by bulk SQL straight into the exchange's database, cases
first reported over the past months across the laid-out members, as the exchange would have recorded
them: hex fingerprints (never a URL: the exchange keeps none), hosting countries mostly covered by a
member and some not (routed to the fallback), removals after plausible delays that differ per member,
some content never removed, police referrals, notices, refused reports and verified duplicates. The
numbers are random but seeded, so two demos look alike. Nothing here is sent to any node: the nodes
never saw these cases, and their own consoles stay as the walk-through left them. The rows go in behind
the audit trail's back, so the network status cells are rebuilt afterwards (exchange.status.rollup), and
the charts show the history at once instead of after the worker's next full rebuild.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Iterable
from typing import Any

from sqlalchemy import create_engine, insert

UNCOVERED = ("US", "RU", "UA", "JP", "CA", "HK")
"""Hosting countries no demo member covers: their cases go to the fallback member."""


def _members(layout: Any) -> tuple[list[str], dict[str, str], str | None]:
    origins = [spec.member_id for spec in layout.members.values() if not spec.fallback]
    covering = {country: spec.member_id for spec in layout.members.values() for country in spec.countries}
    fallback = next((spec.member_id for spec in layout.members.values() if spec.fallback), None)
    return origins, covering, fallback


def history_rows(
    origins: list[str], covering: dict[str, str], fallback: str | None, *, now: dt.datetime, months: int, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The cases and case reports of ``months`` months before ``now`` (newest months busiest)."""
    rng = random.Random(seed)  # noqa: S311 - synthetic demo data, seeded so two demos look alike.
    countries = [*covering, *(UNCOVERED if fallback else ())]
    weights = [6.0 if country in covering else 1.0 for country in countries]
    # Each destination's usual delay to removal (median hours): the fallback, with no hotline in the
    # hosting country, is slowest; that is the point the network makes every year.
    speed = {member: rng.uniform(14, 40) for member in set(covering.values())}
    if fallback:
        speed[fallback] = 240.0
    cases: list[dict[str, Any]] = []
    reports: list[dict[str, Any]] = []
    start = now - dt.timedelta(days=30.4 * months)
    for month in range(months):
        volume = int(160 + 20 * month + rng.uniform(-25, 25))
        for _ in range(volume):
            first = start + dt.timedelta(days=30.4 * (month + rng.random()))
            if first > now - dt.timedelta(hours=1):
                continue
            country = rng.choices(countries, weights)[0]
            destination = covering.get(country) or fallback or rng.choice(origins)
            origin = rng.choice([member for member in origins if member != destination] or origins)
            token = hashlib.sha256(f"{seed}:{len(cases)}".encode()).hexdigest()
            case_id = f"{token[:8]}-{token[8:12]}-4{token[13:16]}-8{token[17:20]}-{token[20:32]}"

            def after(hours: float, first: dt.datetime = first) -> dt.datetime | None:
                at = first + dt.timedelta(hours=hours)
                return at if at < now else None

            rejected = rng.random() < 0.02
            notice = after(rng.uniform(0.5, 10)) if not rejected and rng.random() < 0.85 else None
            removed = after(rng.lognormvariate(0, 0.9) * speed[destination]) if notice or rng.random() < 0.6 else None
            if removed and rng.random() < 0.06:
                removed = None  # Content still up (or moved and lost): the cases that need chasing.
            police = after(rng.lognormvariate(0, 1.1) * 30) if not rejected and rng.random() < 0.7 else None
            status, status_at = None, None
            for name, at in (("ntd_sent", notice), ("police_notified", police), ("removed", removed)):
                if at and (status_at is None or at > status_at):
                    status, status_at = name, at
            cases.append(
                {
                    "id": case_id,
                    "url_fingerprint": token,
                    "origin": origin,
                    "destination": destination,
                    "hosting_country": country,
                    "legal_status": "nationally_illegal" if rng.random() < 0.12 else "baseline",
                    "priority": "urgent" if rng.random() < 0.03 else "normal",
                    "state": "rejected" if rejected else "confirmed",
                    "confirmed_at": first,
                    "created_at": first + dt.timedelta(seconds=rng.uniform(1, 90)),
                    "received_at": None if rejected else first + dt.timedelta(seconds=rng.uniform(2, 120)),
                    "rejected_at": first + dt.timedelta(minutes=5) if rejected else None,
                    "rejected_reason": "not_illegal_here" if rejected else None,
                    "status": None if rejected else status,
                    "status_at": None if rejected else status_at,
                    "ntd_sent_at": notice,
                    "police_notified_at": police,
                    "removed_at": removed,
                    "moved_at": None,
                }
            )
            reports.append(_report(case_id, origin, country, first, duplicate=False, state="opened"))
            if not rejected and rng.random() < 0.07:  # Another member reported the same location later.
                other = rng.choice([member for member in origins if member != origin] or origins)
                reports.append(
                    _report(
                        hashlib.sha256(f"dup:{case_id}".encode()).hexdigest()[:36],
                        other,
                        country,
                        first + dt.timedelta(hours=rng.uniform(1, 72)),
                        duplicate=True,
                        state="verified",
                        case_id=case_id,
                    )
                )
    return cases, reports


def _report(
    report_id: str,
    member: str,
    country: str,
    at: dt.datetime,
    *,
    duplicate: bool,
    state: str,
    case_id: str | None = None,
) -> dict[str, Any]:
    return {
        "report_id": report_id,
        "member": member,
        "case_id": case_id or report_id,
        "duplicate": duplicate,
        "state": state,
        "received_at": at,
        "hosting_country": country,
        "priority": "normal",
        "hashes": [],
        "settled_at": at if duplicate else None,
    }


def _chunks(rows: list[dict[str, Any]], size: int = 2000) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def seed_history(layout: Any, *, now: dt.datetime | None = None, months: int = 12, seed: int = 7) -> int:
    """Write ``months`` months of cases into the laid-out exchange's database, then rebuild the network
    status cells from every case; returns how many cases."""
    from sqlalchemy.orm import Session

    from exchange.cases.models import Case, CaseReport, Location
    from exchange.status.rollup import rebuild

    origins, covering, fallback = _members(layout)
    if not origins:
        return 0
    cases, reports = history_rows(
        origins, covering, fallback, now=now or dt.datetime.now(dt.UTC), months=months, seed=seed
    )
    engine = create_engine(layout.exchange.database)
    try:
        with engine.begin() as connection:
            for chunk in _chunks(cases):
                connection.execute(insert(Case), chunk)
            for chunk in _chunks(reports):
                connection.execute(insert(CaseReport), chunk)
            live = [
                {"url_fingerprint": c["url_fingerprint"], "case_id": c["id"]} for c in cases if c["state"] != "rejected"
            ]
            for chunk in _chunks(live):
                connection.execute(insert(Location), chunk)
        with Session(engine) as session:
            rebuild(session, now=dt.datetime.now(dt.UTC))
            session.commit()
    finally:
        engine.dispose()
    return len(cases)
