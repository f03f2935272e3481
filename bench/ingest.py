"""``make bench-ingest``: the exchange's cost per report as its store grows, from empty to 10 million cases,
on SQLite and on PostgreSQL.

1. **The store.** A network laid out as the demo's (exchange, hotline-nl, hotline-de, a dev PKI), its
   exchange database migrated and its directory filled. Then, step by step, the store is grown by bulk SQL
   (``executemany`` on SQLite, ``COPY`` on PostgreSQL; secondary indexes dropped during the load and built
   again after it, as a bulk load would) to each size of ``--sizes``: per case an id as nodes make them
   (``federation.signing.new_message_id``: time-ordered, here at creation times spread over two years), one
   location (URL fingerprint), one content hash (a second fingerprint), its opening report and its
   delivered outbox row (token erased), over 50 members and 60 hosting countries. How long each step took
   is printed.
2. **The measure, at each size.** The exchange app in this process (Flask test client: no TLS, no HTTP;
   TLS costs the same at every size, and the throughput bench measures it), hotline-nl's signed
   transactions of ``--per-transaction`` new reports, then hotline-de's transactions of receipts for them,
   as a running network sends them: exchange CPU (``process_time``) per report and per receipt, median of
   ``--rounds`` rounds of ``--transactions`` transactions each, after a warm-up round. The floor is the same
   measure on the empty store, in the same run.

The target (issue 11): ingest per report within 20 % of its empty-store cost at 10 million cases, on both.
The SQLite file and the PostgreSQL database are removed at the end (``--keep`` keeps them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # Runnable as ``python bench/ingest.py`` from anywhere.
    sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402

from bench.bulk import POSTGRES_ADMIN, load_postgres, load_sqlite  # noqa: E402
from bench.dashboard import COUNTRIES, MEMBERS, covering  # noqa: E402
from bench.measure import machine, record_target, say, show_table  # noqa: E402
from bench.throughput import DESTINATION, EXCHANGE_ID, HEADERS, ORIGIN, Documents  # noqa: E402
from demo.network import lay_out, register_members  # noqa: E402
from federation.messages import RECEIPT, REPORT, TRANSACTION, format_timestamp  # noqa: E402
from federation.signing import Signer  # noqa: E402

TARGET = 1.20
TABLES = ("cases", "locations", "case_hashes", "case_reports", "outbox")
CHUNK = 100_000


# --- growing the store ------------------------------------------------------------------------------------


def rows(start: int, stop: int, now: dt.datetime) -> Iterator[dict[str, list[tuple]]]:  # type: ignore[type-arg]
    """The rows of cases ``start`` to ``stop``, in chunks, shaped like ``bench.dashboard``'s."""
    rng = random.Random(start)
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(COUNTRIES))]
    span = 24 * 30.4 * 86400
    for first in range(start, stop, CHUNK):
        chunk: dict[str, list[tuple]] = {"cases": [], "locations": [], "hashes": [], "reports": [], "outbox": []}  # type: ignore[type-arg]
        for n in range(first, min(stop, first + CHUNK)):
            digest = hashlib.sha256(b"ingest-case-%d" % n).digest()
            fingerprint = hashlib.sha256(b"ingest-url-%d" % n).hexdigest()
            content = hashlib.sha256(b"ingest-file-%d" % n).hexdigest()
            at = now - dt.timedelta(seconds=span * rng.random())
            case_id = uuid7_at(at, digest)
            country = rng.choices(COUNTRIES, weights)[0]
            destination, origin = covering(country), rng.choice(MEMBERS[:49])
            chunk["cases"].append(
                (
                    case_id,
                    fingerprint,
                    origin,
                    destination,
                    country,
                    "baseline",
                    "normal",
                    "confirmed",
                    at,
                    at,
                    at,
                    None,
                    None,
                    "removed",
                    at,
                    at,
                    None,
                    at,
                    None,
                )
            )
            chunk["locations"].append((fingerprint, case_id))
            chunk["hashes"].append(("sha256", content, case_id))
            chunk["reports"].append((case_id, origin, case_id, False, "opened", at, country, "normal", "[]"))
            chunk["outbox"].append((destination, origin, case_id, "hotline.report.v1", 1, "delivered", 1, at))
        yield chunk


def uuid7_at(at: dt.datetime, random_bytes: bytes) -> str:
    """The message id a node made at ``at`` (``federation.signing.new_message_id``: UUID version 7, RFC
    9562: 48 bits of Unix milliseconds, the version, 74 random bits), its random part from ``random_bytes``."""
    milliseconds = int(at.timestamp() * 1000)
    randomness = int.from_bytes(random_bytes[:10]) & ((1 << 80) - 1)
    value = (milliseconds << 80) | randomness
    value = (value & ~(0xF << 76) | 7 << 76) & ~(0b11 << 62) | 0b10 << 62  # The version, then the variant.
    return str(uuid.UUID(int=value))


def _members(now: dt.datetime) -> list[tuple[Any, ...]]:
    """The network's 50 members (bench.dashboard's), beside the laid-out hotline-nl and hotline-de."""
    return [(member, f"{member} (bench)", json.dumps([]), "active", False, now) for member in MEMBERS]


def grow_sqlite(path: Path, start: int, stop: int, now: dt.datetime) -> None:
    load_sqlite(path, _members(now), rows(start, stop, now), TABLES, journal=True)


def grow_postgres(url: str, start: int, stop: int, now: dt.datetime) -> None:
    load_postgres(url, _members(now), rows(start, stop, now), TABLES)


# --- measuring ------------------------------------------------------------------------------------------


class Exchange:
    """The exchange app in this process, with hotline-nl sending reports and hotline-de answering receipts."""

    def __init__(self, layout: Any, args: argparse.Namespace) -> None:
        import tomllib

        from exchange import create_app

        os.environ["EXCHANGE_CONFIG"] = str(layout.exchange.config)
        with open(layout.exchange.config, "rb") as handle:
            config = tomllib.load(handle)
        self.app = create_app({**config, "SCHEDULER_ENABLED": False})
        logging.getLogger("federation.delivery").setLevel(logging.CRITICAL)
        self.client = self.app.test_client()
        origin, destination = layout.members[ORIGIN.member_id], layout.members[DESTINATION.member_id]
        self.reports = Documents(Signer.from_files(origin.key, origin.cert), hashes=1, validate=False)
        self.receipts = Signer.from_files(destination.key, destination.cert)
        self.origin_env = {"SSL_CLIENT_CERT": origin.cert.read_text(), "SSL_CLIENT_VERIFY": "SUCCESS"}
        self.destination_env = {"SSL_CLIENT_CERT": destination.cert.read_text(), "SSL_CLIENT_VERIFY": "SUCCESS"}
        self.args = args

    def close(self) -> None:
        with self.app.app_context():
            self.app.extensions["service_db"].engine.dispose()

    def _post(self, bodies: list[bytes], environ: dict[str, str]) -> float:
        started = time.process_time()
        for body in bodies:
            response = self.client.post("/v1/transactions", data=body, headers=HEADERS, environ_base=environ)
            if response.status_code != 200:
                raise RuntimeError(f"the exchange refused a transaction: {response.status_code} {response.text[:300]}")
        return time.process_time() - started

    def round(self) -> tuple[float, float]:
        """One round: CPU µs per report, then per receipt."""
        now = dt.datetime.now(dt.UTC)
        per, count = self.args.per_transaction, self.args.transactions
        report_ids: list[str] = []
        report_bodies = []
        for _ in range(count):
            reports = [self.reports.report_claims(now) for _ in range(per)]
            report_ids += [item["jti"] for item in reports]
            tokens = [self.reports.signer.sign_compact(REPORT, item) for item in reports]
            report_bodies.append(self.reports.transaction(tokens, now)[1])
        receipt_bodies = []
        for first in range(0, len(report_ids), per):
            tokens = [
                self.receipts.sign_compact(
                    RECEIPT,
                    self.receipts.claims(
                        ORIGIN.member_id, now=now, report_id=report_id, received_at=format_timestamp(now)
                    ),
                )
                for report_id in report_ids[first : first + per]
            ]
            transaction = self.receipts.claims(EXCHANGE_ID, now=now, documents=tokens)
            receipt_bodies.append(json.dumps(self.receipts.sign_flattened(TRANSACTION, transaction)).encode())
        per_report = self._post(report_bodies, self.origin_env) / len(report_ids) * 1e6
        per_receipt = self._post(receipt_bodies, self.destination_env) / len(report_ids) * 1e6
        return per_report, per_receipt


def measure(layout: Any, args: argparse.Namespace, *, profile: bool = False) -> tuple[float, float]:
    exchange = Exchange(layout, args)
    try:
        exchange.round()  # Warm-up: caches, prepared statements, the pages the first lookups touch.
        results = [exchange.round() for _ in range(args.rounds)]
        if profile:
            import cProfile
            import pstats

            from sqlalchemy import event

            spent: dict[str, list[float]] = {}
            began: dict[int, float] = {}

            def before(_conn: Any, cursor: Any, *_args: Any) -> None:
                began[id(cursor)] = time.perf_counter()

            def after(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
                key = " ".join(statement.split())[:150]
                spent.setdefault(key, []).append(time.perf_counter() - began.pop(id(cursor), time.perf_counter()))

            with exchange.app.app_context():
                engine = exchange.app.extensions["service_db"].engine
            event.listen(engine, "before_cursor_execute", before)
            event.listen(engine, "after_cursor_execute", after)
            profiler = cProfile.Profile()
            profiler.enable()
            exchange.round()
            profiler.disable()
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)
            say("    statements of one more round, by total time:")
            for key, times in sorted(spent.items(), key=lambda item: -sum(item[1]))[:8]:
                say(f"      {sum(times) * 1000:8.1f} ms  {len(times):4d}x  {key}")
            say("    cProfile of that round, by own time:")
            pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(15)
    finally:
        exchange.close()
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)


# --- the run ---------------------------------------------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace, root: Path) -> list[tuple[int, float, float, float]]:
    """Rows of (cases stored, seconds to grow to that size, µs per report, µs per receipt)."""
    os.environ.pop("EXCHANGE_CONFIG", None)  # The previous backend's, whose folder is gone.
    database = f"hotline_bench_ingest_{os.getpid()}"
    if backend == "sqlite":
        store = root / "exchange.db"
        url = f"sqlite:///{store}"
    else:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{database}"')
    layout = lay_out(root / "network", members=(ORIGIN, DESTINATION), databases={"exchange": url})
    register_members(layout)
    now = dt.datetime.now(dt.UTC)
    results = []
    stored = 0
    try:
        for size in [0, *args.sizes]:
            grew = 0.0
            if size > stored:
                say(f"  {backend}: growing the store from {stored:,} to {size:,} cases…")
                started = time.perf_counter()
                if backend == "sqlite":
                    grow_sqlite(store, stored, size, now)
                else:
                    grow_postgres(url.replace("postgresql+psycopg://", "postgresql://"), stored, size, now)
                grew = time.perf_counter() - started
                stored = size
                say(f"    grown in {grew:.0f} s")
            report_us, receipt_us = measure(layout, args, profile=args.profile)
            say(f"  {backend} at {size:,} cases: {report_us:.0f} µs per report, {receipt_us:.0f} µs per receipt")
            results.append((size, grew, report_us, receipt_us))
    finally:
        if backend == "postgresql" and not args.keep:
            with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/ingest.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(part.replace("_", "")) for part in text.split(",")],
        default=[100_000, 1_000_000, 10_000_000],
        help="store sizes to measure at, in cases, besides empty (default 100000,1000000,10000000)",
    )
    parser.add_argument("--per-transaction", type=int, default=50, help="reports (and receipts) per transaction")
    parser.add_argument("--transactions", type=int, default=20, help="transactions per round")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per size (the median is kept)")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="run one backend")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one round per size")
    parser.add_argument("--keep", action="store_true", help="keep the stores (var/bench/ingest-*)")
    args = parser.parse_args(argv)
    say(json.dumps(machine()))
    table = []
    verdicts = {}
    for backend in ("sqlite", "postgresql"):
        if args.only not in (None, backend):
            continue
        (REPO / "var" / "bench").mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix=f"ingest-{backend}-", dir=REPO / "var" / "bench"))
        try:
            results = run_backend(backend, args, root)
        finally:
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)
        floor_report, floor_receipt = results[0][2], results[0][3]
        for size, grew, report_us, receipt_us in results:
            table.append(
                (
                    backend,
                    f"{size:,}",
                    f"{grew:.0f}" if grew else "-",
                    f"{report_us:.0f}",
                    f"{report_us / floor_report:.2f}x",
                    f"{receipt_us:.0f}",
                    f"{receipt_us / floor_receipt:.2f}x",
                )
            )
        largest = results[-1]
        verdicts[backend] = (largest[0], largest[2] / floor_report, largest[3] / floor_receipt)
    say()
    show_table(
        ["backend", "cases stored", "grown in s", "µs CPU/report", "vs empty", "µs CPU/receipt", "vs empty"],
        table,
    )
    if verdicts and args.only is None and min(size for size, _, _ in verdicts.values()) >= 10_000_000:
        record_target(
            "exchange ingest per report within 20% of empty-store cost at 10 million cases (SQLite, PostgreSQL)",
            ", ".join(
                f"{backend}: reports {report:.2f}x, receipts {receipt:.2f}x"
                for backend, (_, report, receipt) in verdicts.items()
            ),
            all(report <= TARGET and receipt <= TARGET for _, report, receipt in verdicts.values()),
            source="ingest.py",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
