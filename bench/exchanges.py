"""``make bench-exchanges``: one exchange process against two, on one PostgreSQL, end to end.

For each count of exchange processes (1, then 2), a fresh network: the exchange's database on the
PostgreSQL server (created for the run, dropped after), hotline-nl and hotline-de on SQLite, a throwaway dev
PKI. With two, the second exchange process ("exchange-b") has the same identity and database, its own
network surface and its own worker; hotline-de talks to it while hotline-nl talks to the first, so
reports are committed by one process and receipts by the other, and both workers deliver (each
destination's queue is claimed with an advisory lock). Then the throughput bench's end-to-end phase:
``--reports`` reports submitted through hotline-nl's operator batch API (4 threads, ``--batch`` per
request), timed until all are stored at hotline-de, and checked: every report stored once, every receipt
back, nothing dead. The table gives the rate, the exchange's CPU per report (all its processes) and how
busy each process was while the backlog drained.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # Runnable as ``python bench/exchanges.py`` from anywhere.
    sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402

from bench.bulk import POSTGRES_ADMIN  # noqa: E402
from bench.measure import machine, record_target, say, show_table, sqlite_path  # noqa: E402
from bench.throughput import DESTINATION, EXCHANGE_ID, ORIGIN, Documents, count_rows, end_to_end  # noqa: E402
from demo.network import (  # noqa: E402
    Network,
    Service,
    ServiceSpec,
    free_port,
    lay_out,
    read_toml,
    register_members,
    write_toml,
)
from federation.signing import Signer  # noqa: E402


def run_once(processes: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    database = f"hotline_bench_exchanges_{os.getpid()}_{processes}"
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{database}"')
    settings = {"RATE_LIMIT_TRANSACTIONS": "100000/second"}
    layout = lay_out(root, members=(ORIGIN, DESTINATION), databases={EXCHANGE_ID: url}, settings=settings)
    register_members(layout)
    network = Network(layout)
    second = None
    if processes == 2:
        second = ServiceSpec(**{**layout.exchange.__dict__, "port": free_port(), "config": root / "exchange-b.toml"})
        write_toml(second.config, {**read_toml(layout.exchange.config), "PORT": second.port})
        config = layout.members[DESTINATION.member_id].config
        write_toml(config, {**read_toml(config), "EXCHANGE_URL": second.url})
        network.processes["exchange-b"] = Service(second, root / "logs", label="exchange-b", launcher=network.launcher)
    try:
        network.start(EXCHANGE_ID, ORIGIN.member_id, DESTINATION.member_id)
        if second is not None:
            # Its worker waits on the worker lock the first one holds (and takes over if that one dies):
            # the network surfaces share the intake; one worker at a time runs the scheduled jobs and
            # the deliveries.
            network.processes["exchange-b"].start(("network", "worker"))
            network.processes["exchange-b"].surfaces["network"].wait_ready()
        member = layout.members[ORIGIN.member_id]
        docs = Documents(Signer.from_files(member.key, member.cert), hashes=1)
        e2e = end_to_end(layout, network, docs, args)
        origin_db = sqlite_path(layout.members[ORIGIN.member_id].database)
        destination_db = sqlite_path(layout.members[DESTINATION.member_id].database)
        inbound = count_rows(
            destination_db,
            "SELECT count(*) FROM inbound_reports WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(e2e.load_ids),),
        )
        waiting = count_rows(
            origin_db,
            "SELECT count(*) FROM reports WHERE received_at IS NULL AND id IN (SELECT value FROM json_each(?))",
            (json.dumps(e2e.load_ids),),
        )
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
            dead = connection.execute("SELECT count(*) FROM outbox WHERE state = 'dead'").fetchall()[0][0]
            routed = connection.execute(
                "SELECT count(*) FROM case_reports WHERE report_id = ANY(%s)", (e2e.load_ids,)
            ).fetchall()[0][0]
        return {
            "processes": processes,
            "reports": len(e2e.load_ids),
            "rate": e2e.stored / e2e.delivered_wall if e2e.delivered_wall else 0.0,
            "stored": e2e.stored,
            "exchange_cpu_ms": e2e.exchange_cpu / max(1, e2e.stored) * 1000,
            "total_cpu_ms": (e2e.origin_cpu + e2e.exchange_cpu + e2e.destination_cpu) / max(1, e2e.stored) * 1000,
            "busy": e2e.busy,
            "median_ms": sorted(e2e.load.total)[len(e2e.load.total) // 2] if e2e.load.total else None,
            "exactly_once": inbound == routed == len(e2e.load_ids) and waiting == 0 and dead == 0,
            "inbound": inbound,
            "routed": routed,
            "waiting": waiting,
            "dead": dead,
        }
    finally:
        network.stop()
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/exchanges.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=10_000, help="reports submitted in each run")
    parser.add_argument("--batch", type=int, default=500, help="reports per operator request")
    parser.add_argument("--keep", action="store_true", help="keep the run folders (logs)")
    options = parser.parse_args(argv)
    args = argparse.Namespace(
        light_reports=5, e2e_reports=options.reports, e2e_threads=4, e2e_batch=options.batch, e2e_timeout=300.0
    )
    say(json.dumps(machine()))
    results = []
    for processes in (1, 2):
        (REPO / "var" / "bench").mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix=f"exchanges-{processes}-", dir=REPO / "var" / "bench"))
        say(f"{processes} exchange process(es) on one PostgreSQL: {options.reports:,} reports end to end…")
        started = time.perf_counter()
        try:
            results.append(run_once(processes, args, root))
        finally:
            if not options.keep:
                shutil.rmtree(root, ignore_errors=True)
        say(f"  done in {time.perf_counter() - started:.0f} s")
    rows = []
    for result in results:
        busiest = sorted(result["busy"].items(), key=lambda item: -item[1][1])[:4]
        rows.append(
            (
                result["processes"],
                f"{result['stored']:,}",
                f"{result['rate']:.0f}",
                f"{result['exchange_cpu_ms']:.2f}",
                f"{result['total_cpu_ms']:.2f}",
                f"{result['median_ms']:.0f}" if result["median_ms"] is not None else "-",
                "yes" if result["exactly_once"] else f"NO ({result})",
                ", ".join(f"{label} {100 * drain:.0f}%" for label, (_, drain) in busiest),
            )
        )
    say()
    show_table(
        [
            "exchange processes",
            "stored",
            "reports/s",
            "exchange CPU ms/report",
            "all CPU ms/report",
            "median confirm->stored ms",
            "each once, receipts back, none dead",
            "busiest processes while draining (% of a core)",
        ],
        rows,
    )
    one, two = results
    record_target(
        "two exchange processes on one PostgreSQL against one",
        f"1: {one['rate']:.0f}/s, 2: {two['rate']:.0f}/s end to end"
        f" ({two['total_cpu_ms']:.1f} ms CPU per report over all processes on 2 cores)",
        one["exactly_once"] and two["exactly_once"],
        source="exchanges.py",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
