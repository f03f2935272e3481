"""``make bench-cases``: the analyst's pages at 100,000 cases, and the exchange's prefix lookup at 10 million
fingerprints, each against the floor measured in the same run.

1. **The node's console** (a real console process, cheroot, HTTPS, SQLite) with ``--cases`` cases (and one
   report each) written straight into its database by bulk SQL: states, priorities, countries, sources
   and ages spread as a working hotline's would be. Signed in as an analyst with a real session, the
   bench times each queue page (new, all, deep pages, filters, assigned to me), the home page, and case
   pages picked at random, sequentially: median and p95 of the wall time a browser waits for the HTML.
   The floor is ``/healthz`` over the same kept-alive connection (TLS, routing, the session check skipped).
2. **The exchange's lookup** (``exchange.lookup.services.answer_lookup``, in process, on SQLite) with
   ``--fingerprints`` confirmed cases, each with a location and a content hash, built by bulk SQL. A
   lookup for one case carries 4 URL and 4 hash prefixes (one real value of each, with 3 decoys each, as
   a node sends them); the largest request, for 16 cases, 64 of each. The answer holds every confirmed
   entry under those prefixes (about 9.5 per prefix at 10 million), so its cost follows the number of
   prefixes. The floor is the same number of primary-key probes in two statements, in the same session.
   The HTTPS and mutual-TLS cost of the network surface is measured by ``bench/throughput.py``.

Sizes are flags (``--help``). With the defaults, building the 10-million store takes a few minutes on 2
cores (printed), and the store stays in ``var/bench/lookup-<n>.db`` for later runs (``--rebuild``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import random
import re
import sqlite3
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # Runnable as ``python bench/cases.py`` from anywhere.
    sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from bench.measure import machine, percentile, record_target, say, show_table, sqlite_path  # noqa: E402
from certs.devnet import DevMember  # noqa: E402
from demo.network import (  # noqa: E402
    Network,
    lay_out,
    prepare_database,
    register_members,
    service_app,
)

NODE = DevMember("hotline-nl", "Hotline Netherlands (bench)", ("NL",))
STATES = [("closed", 60), ("new", 10), ("review", 4), ("assessed", 6), ("forwarded", 15), ("hosted_here", 5)]
COUNTRIES = ["DE", "FR", "US", "NL", "RU", "UA", "JP", "CA", "GB", "PL"]
TARGET_PAGE_MS = 200.0
TARGET_LOOKUP_MS = 5.0


def _when(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


# --- 1. the node's pages ------------------------------------------------------------------------------------


def fill_node(database: Path, count: int, analyst: str) -> list[str]:
    """``count`` cases with one report each, by bulk SQL; returns some case ids for the case pages."""
    rng = random.Random(8)
    now = dt.datetime.now(dt.UTC)
    states = [state for state, weight in STATES for _ in range(weight)]
    cases, submissions, picked = [], [], []
    for n in range(count):
        case_id = str(uuid.UUID(int=rng.getrandbits(128)))
        url = f"http://host{n % 997}.example/gallery/{n}/view?id={n * 7}"
        fingerprint = hashlib.sha256(url.encode()).hexdigest()
        state = rng.choice(states)
        first = now - dt.timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
        assessed = state != "new"
        legal = rng.choice(["baseline", "baseline", "nationally_illegal", "not_illegal"]) if assessed else None
        assessment = (
            json.dumps({"legal_status": legal, "media_type": "image", "content_hashes": []}) if assessed else None
        )
        country = rng.choice(COUNTRIES) if assessed else None
        triage = json.dumps(
            {
                "asked_at": _when(first),
                "error": None,
                "network": {"location": None, "material": []},
                "here": {"sent": [], "received": [], "material": []},
            }
        )
        cases.append(
            (
                case_id,
                url,
                url,
                fingerprint,
                state,
                "urgent" if rng.random() < 0.02 else "normal",
                _when(first),
                _when(first),
                1,
                _when(first),
                analyst if rng.random() < 0.05 else None,
                triage,
                _when(first),
                0,
                assessment,
                legal,
                "account:" + analyst if assessed else None,
                country,
            )
        )
        source = "partner" if rng.random() < 0.7 else "public"
        submissions.append(
            (
                str(uuid.UUID(int=rng.getrandbits(128))),
                case_id,
                source,
                url,
                url,
                fingerprint,
                "website",
                "[]",
                "en",
                _when(first),
                0,
                "received",
                _when(first),
            )
        )
        if rng.random() < 0.001:
            picked.append(case_id)
    with sqlite3.connect(database) as connection:
        connection.executemany(
            "INSERT INTO cases (id, url, canonical_url, url_fingerprint, state, priority, first_reported_at,"
            " last_reported_at, reporters, state_changed_at, assigned_to, triage, triaged_at, known, assessment,"
            " legal_status, assessed_by, hosting_country, fallback) VALUES"
            " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            cases,
        )
        connection.executemany(
            "INSERT INTO submissions (id, case_id, source, url, canonical_url, url_fingerprint, seen_on,"
            " content_hashes, language, received_at, position, public_status, status_changed_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            submissions,
        )
        connection.execute("ANALYZE")
    return picked


def signed_in(console_url: str, ca: Path, who: dict[str, str]) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca)
    form = session.get(f"{console_url}/sign-in", timeout=30).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    if token is None:
        raise RuntimeError("no CSRF token on the sign-in page")
    answer = session.post(
        f"{console_url}/sign-in",
        data={"csrf_token": token.group(1), "username": who["username"], "password": who["password"]},
        timeout=30,
    )
    if "Sign out" not in answer.text:
        raise RuntimeError(f"sign-in failed: {answer.status_code}")
    return session


def time_get(session: requests.Session, url: str, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = session.get(url, timeout=60)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code}")
        times.append(elapsed)
    return times


def pages_phase(args: argparse.Namespace) -> list[tuple[str, float, float]]:
    root = REPO / "var" / "bench" / "cases"
    layout = lay_out(root, members=(NODE,))
    register_members(layout, demo_accounts=True)
    spec = layout.spec(NODE.member_id)
    analyst = next(a for a in spec.accounts if a["role"] == "analyst")
    started = time.perf_counter()
    picked = fill_node(sqlite_path(spec.database), args.cases, analyst["username"])
    say(f"  wrote {args.cases:,} cases and {args.cases:,} reports by bulk SQL in {time.perf_counter() - started:.1f} s")
    network = Network(layout)
    try:
        network.client(NODE.member_id)  # Starts the console.
        session = signed_in(spec.console_url, layout.web.ca, analyst)
        base = spec.console_url
        floor = time_get(session, f"{base}/healthz", args.repeats)
        rows = [("floor: /healthz", statistics.median(floor), percentile(floor, 0.95))]
        pages = {
            "home (queue counts)": "/",
            "queue: new": "/cases?queue=new",
            "queue: all": "/cases?queue=all",
            "queue: all, page 400": "/cases?queue=all&page=400",
            "queue: assigned to me": "/cases?queue=mine",
            "queue: partner, DE, baseline": "/cases?queue=all&source=partner&country=DE&legal=baseline",
            "queue: older than 30 days": "/cases?queue=all&age=older",
            "queue: URL contains": "/cases?queue=all&q=host42.example",
        }
        for label, path in pages.items():
            times = time_get(session, base + path, args.repeats)
            rows.append((label, statistics.median(times), percentile(times, 0.95)))
        case_times: list[float] = []
        for case_id in (picked * args.repeats)[: max(args.repeats, len(picked))]:
            case_times += time_get(session, f"{base}/cases/{case_id}", 1)
        rows.append(
            (f"case page ({len(set(picked))} cases)", statistics.median(case_times), percentile(case_times, 0.95))
        )
        session.close()
    finally:
        network.stop()
    return rows


# --- 2. the exchange's lookup ------------------------------------------------------------------------------------


def build_lookup_store(path: Path, count: int) -> float:
    """A migrated exchange database with ``count`` confirmed cases, locations and content hashes."""
    layout = lay_out(path.parent / "lookup-layout", members=())
    spec = layout.exchange
    spec.use_database(f"sqlite:///{path}")
    path.unlink(missing_ok=True)
    prepare_database(spec)
    started = time.perf_counter()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA cache_size=-1000000")
    # Secondary indexes are built once at the end (faster than growing them row by row), as a bulk load
    # into a real deployment would do.
    indexes = connection.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('cases', 'locations', 'case_hashes')"
        " AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        connection.execute(f'DROP INDEX "{name}"')
    chunk = 200_000
    at = _when(dt.datetime(2026, 1, 1))
    for start in range(0, count, chunk):
        numbers = range(start, min(count, start + chunk))
        fingerprints = {n: hashlib.sha256(b"url-%d" % n).hexdigest() for n in numbers}
        connection.executemany(
            "INSERT INTO cases (id, url_fingerprint, origin, destination, hosting_country, legal_status, priority,"
            " state, confirmed_at, created_at, received_at) VALUES (?, ?, 'hotline-nl', 'hotline-de', 'DE',"
            " 'baseline', 'normal', 'confirmed', ?, ?, ?)",
            ((f"{n:036d}", fingerprints[n], at, at, at) for n in numbers),
        )
        connection.executemany(
            "INSERT INTO locations (url_fingerprint, case_id) VALUES (?, ?)",
            sorted((fingerprints[n], f"{n:036d}") for n in numbers),
        )
        connection.executemany(
            "INSERT INTO case_hashes (alg, value, case_id) VALUES ('sha256', ?, ?)",
            sorted((hashlib.sha256(b"file-%d" % n).hexdigest(), f"{n:036d}") for n in numbers),
        )
        connection.commit()
    for _, sql in indexes:
        connection.execute(sql)
    connection.execute("ANALYZE")
    connection.commit()
    connection.close()
    return time.perf_counter() - started


def lookup_phase(args: argparse.Namespace) -> list[tuple[str, float, float]]:
    from sqlalchemy import select, text

    from exchange.cases.models import CaseHash, Location
    from exchange.lookup.services import answer_lookup

    store = REPO / "var" / "bench" / f"lookup-{args.fingerprints}.db"
    store.parent.mkdir(parents=True, exist_ok=True)
    if args.rebuild or not store.exists():
        say(f"  building the store: {args.fingerprints:,} confirmed cases, locations and content hashes…")
        building = store.with_suffix(".building")
        took = build_lookup_store(building, args.fingerprints)
        building.replace(store)  # Only a finished store is ever reused.
        say(f"  built in {took:.0f} s ({store.stat().st_size / 1e9:.1f} GB)")
    layout = lay_out(REPO / "var" / "bench" / "lookup-app", members=())
    app = service_app(layout.exchange, SQLALCHEMY_DATABASE_URI=f"sqlite:///{store}")
    rng = random.Random(5)
    rows = []
    with app.app_context():
        session = app.extensions["service_db"].session
        known = [hashlib.sha256(b"url-%d" % rng.randrange(args.fingerprints)).hexdigest() for _ in range(4000)]
        files = [hashlib.sha256(b"file-%d" % rng.randrange(args.fingerprints)).hexdigest() for _ in range(4000)]

        def request(cases: int) -> dict[str, Any]:
            """What a node sends for ``cases`` cases of one URL and one content hash each (real prefixes among
            three decoys each; a 16-case request is the largest, 64 prefixes of each kind)."""
            urls = {value[:5] for value in rng.sample(known, cases // 4 or 1)}
            hashes = {value[:5] for value in rng.sample(files, cases // 4 or 1)}
            while len(urls) < 4 * cases:
                urls.add(f"{rng.getrandbits(20):05x}")
            while len(hashes) < 4 * cases:
                hashes.add(f"{rng.getrandbits(20):05x}")
            return {
                "url_prefixes": sorted(urls),
                "hash_prefixes": [{"alg": "sha256", "prefix": p} for p in sorted(hashes)],
            }

        def timed(cases: int) -> tuple[list[float], float]:
            times, entries = [], 0
            for _ in range(args.lookups):
                body = request(cases)
                started = time.perf_counter()
                answer = answer_lookup(session, body)
                times.append((time.perf_counter() - started) * 1000)
                entries += len(answer["locations"]) + sum(len(h["locations"]) for h in answer["hashes"])
            return times, entries / args.lookups

        def floor(count: int) -> list[float]:
            times = []
            for _ in range(args.lookups):
                values = [f"{rng.getrandbits(256):064x}" for _ in range(count)]
                started = time.perf_counter()
                session.execute(
                    select(Location.case_id).where(Location.url_fingerprint.in_(values[: count // 2]))
                ).all()
                session.execute(
                    select(CaseHash.case_id).where(CaseHash.alg == "sha256", CaseHash.value.in_(values[count // 2 :]))
                ).all()
                times.append((time.perf_counter() - started) * 1000)
            return times

        for _ in range(50):  # Warm the page cache as a running exchange would be.
            answer_lookup(session, request(16))
        for cases in (1, 16):
            prefixes = 8 * cases
            probes = floor(prefixes)
            rows.append((f"floor: {prefixes} key probes", statistics.median(probes), percentile(probes, 0.95)))
            times, entries = timed(cases)
            rows.append(
                (
                    f"lookup for {cases} case{'s' if cases > 1 else ''}"
                    f" ({prefixes} prefixes, {entries:.0f} entries back)",
                    statistics.median(times),
                    percentile(times, 0.95),
                )
            )
        session.execute(text("SELECT 1"))
        session.remove()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/cases.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="cases at the node (default 100,000)")
    parser.add_argument("--repeats", type=int, default=30, help="requests per page")
    parser.add_argument("--fingerprints", type=int, default=10_000_000, help="confirmed cases at the exchange")
    parser.add_argument("--lookups", type=int, default=200, help="lookup requests timed")
    parser.add_argument("--rebuild", action="store_true", help="build the lookup store again")
    parser.add_argument("--only", choices=["pages", "lookup"], help="run one part")
    args = parser.parse_args(argv)
    say(json.dumps(machine()))
    results: list[tuple[str, float, float, str]] = []
    if args.only in (None, "pages"):
        say(f"1. The node's console with {args.cases:,} cases")
        for label, median, p95 in pages_phase(args):
            verdict = "" if label.startswith("floor") else ("met" if p95 < TARGET_PAGE_MS else "NOT MET")
            results.append((label, median, p95, verdict))
    if args.only in (None, "lookup"):
        say(f"2. The exchange's prefix lookup with {args.fingerprints:,} fingerprints")
        for label, median, p95 in lookup_phase(args):
            one_case = label.startswith("lookup for 1 case")
            verdict = ("met" if p95 < TARGET_LOOKUP_MS else "NOT MET") if one_case else ""
            results.append((label, median, p95, verdict))
    say()
    show_table(
        [
            "what",
            "median ms",
            "p95 ms",
            f"target (p95 < {TARGET_PAGE_MS:.0f} ms pages, < {TARGET_LOOKUP_MS:.0f} ms lookup)",
        ],
        [(label, f"{median:.1f}", f"{p95:.1f}", verdict) for label, median, p95, verdict in results],
    )
    pages = [(label, p95) for label, _, p95, verdict in results if verdict and not label.startswith("lookup")]
    if pages:
        worst = max(pages, key=lambda item: item[1])
        record_target(
            "every queue and case page p95 < 200 ms at 100,000 cases",
            f"slowest p95 {worst[1]:.1f} ms ({worst[0]}; {args.cases:,} cases)",
            worst[1] < TARGET_PAGE_MS,
            source="cases.py",
        )
    lookup = [(label, p95) for label, _, p95, verdict in results if verdict and label.startswith("lookup")]
    if lookup:
        record_target(
            "prefix lookup for one case p95 < 5 ms at 10 million fingerprints",
            f"p95 {lookup[0][1]:.1f} ms ({args.fingerprints:,} fingerprints)",
            lookup[0][1] < TARGET_LOOKUP_MS,
            source="cases.py",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
