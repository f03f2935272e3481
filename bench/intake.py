"""``make bench-intake``: how fast a node takes reports in, against the floor measured in the same run.

Starts a real node's public surface (cheroot, HTTPS, SQLite) under a fresh folder in ``var/bench/`` and
measures, in one run on this machine:

1. **Partner batch intake**: batches of 1,000 reports POSTed to ``/api/v1/reports/batch`` with a real
   OAuth2 bearer token over kept-alive HTTPS, one client and then two at once; every report has its own
   URL, so every one is accepted and stored (checked afterwards by counting rows). Reports per second
   (wall clock, client side), and the server's CPU per report from ``/proc``.
2. **The public page's submit under 50 concurrent reporters**: 50 threads, each a reporter with its own
   browser session (cookie, CSRF token) and its own loopback address (127.0.1.x, so that each is counted
   by the throttle as the separate household it would be). Each reporter loops: load the form, think
   (``--think`` seconds, uniformly random around it), submit (POST, follow the redirect to the
   confirmation page). The submit's latency, from sending the POST to having the confirmation page, is
   what a reporter waits for: median, p95, p99. The reporters run as threads of a few processes
   (``--client-processes``), not of the bench process, so that the load generator's own interpreter lock
   is not what is measured. A second round with no think time at all shows where the page saturates.
3. **The floor**: one kept-alive HTTPS POST of a 1,000-report body to a trivial WSGI app on the same
   server (cheroot, same TLS); per report, the checks every item gets (schema, canonicalisation and
   fingerprint); one multi-row SQLite insert of 1,000 rows.

Everything runs on one machine: the load generator shares the cores with the server. Sizes are flags
(``--help``); the defaults take about a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import sqlite3
import ssl
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # Runnable as ``python bench/intake.py`` from anywhere.
    sys.path.insert(0, str(REPO))

import requests  # noqa: E402

import schemas  # noqa: E402
from bench.measure import (  # noqa: E402
    cpu_seconds,
    load_average,
    machine,
    per_call_us,
    percentile,
    record_target,
    say,
    settings_from,
    show_table,
)
from certs.devnet import DevMember  # noqa: E402
from demo.network import Network, PartnerClient, PublicReporter, lay_out, register_members  # noqa: E402
from node.intake.services import check_url  # noqa: E402

NODE = DevMember("hotline-nl", "Hotline Netherlands (bench)", ("NL",))


def batch(index: int, size: int, run: str) -> dict[str, Any]:
    """A realistic batch: distinct URLs on a few hosts, an external id, some with a hash."""
    return {
        "reports": [
            {
                "url": f"https://media{n % 7}.video-host.example/{run}/{index}/{n:05d}/clip.mp4?t={n * 31 % 997}",
                "external_id": f"{run}-{index}-{n}",
                "seen_on": "website",
                **({"content_hashes": [{"alg": "md5", "value": f"{n:032x}"}]} if n % 3 == 0 else {}),
            }
            for n in range(size)
        ]
    }


def partner_round(network: Network, args: argparse.Namespace, pid: int, clients: int) -> dict[str, Any]:
    """``args.batches`` batches of ``args.batch`` new reports, sent by ``clients`` partners at once."""
    partners = [network.partner(NODE.member_id) for _ in range(clients)]
    for partner in partners:
        partner.fetch_token()
        partner.submit(batch(0, 10, f"warm{uuid.uuid4().hex[:6]}")["reports"])
    run = uuid.uuid4().hex[:8]
    bodies = [json.dumps(batch(i, args.batch, run)).encode() for i in range(args.batches)]
    counter = iter(range(len(bodies)))
    lock = threading.Lock()
    latencies: list[float] = []
    accepted = [0]

    def work(partner: PartnerClient) -> None:
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            started = time.perf_counter()
            response = partner.request(
                "POST", "/api/v1/reports/batch", data=bodies[index], headers={"Content-Type": "application/json"}
            )
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"batch refused: {response.status_code} {response.text[:200]}")
            with lock:
                latencies.append(elapsed * 1000)
                accepted[0] += response.json()["accepted"]

    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(partner,)) for partner in partners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    for partner in partners:
        partner.close()
    return {
        "clients": clients,
        "batches": len(bodies),
        "reports": accepted[0],
        "reports_per_s": accepted[0] / wall,
        "batch_ms_median": statistics.median(latencies),
        "batch_ms_max": max(latencies),
        "server_cpu_us_per_report": cpu / max(1, accepted[0]) * 1e6,
        "server_cpu_share": cpu / wall,
    }


def reporters_in_one_process(
    url: str, ca: str, numbers: list[int], think: float, stop_at: float
) -> tuple[list[float], list[str]]:
    """Some of the reporters, as threads of one process (run in a child: see :func:`public_phase`)."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    # The children start at slightly different moments: all of them run until the same wall-clock time.
    stop = time.monotonic() + (stop_at - time.time())

    def reporter(number: int) -> None:
        who = PublicReporter(url, Path(ca), source_address=f"127.0.1.{number + 1}")
        rng = random.Random(number)
        try:
            while time.monotonic() < stop:
                token = who.form("en")
                if think:
                    time.sleep(rng.uniform(0.5 * think, 1.5 * think))
                started = time.perf_counter()
                try:
                    who.report(
                        f"http://reported-{number}.example/{uuid.uuid4().hex}",
                        token=token,
                        description="Pictures of a child, posted on a forum.",
                    )
                except RuntimeError as exc:
                    with lock:
                        failures.append(str(exc)[:120])
                    continue
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
        finally:
            who.close()

    threads = [threading.Thread(target=reporter, args=(number,)) for number in numbers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures


def public_phase(network: Network, args: argparse.Namespace, pid: int, think: float) -> dict[str, Any]:
    """``args.reporters`` reporters, spread over ``args.client_processes`` processes: fifty people are fifty
    browsers, and fifty threads of one Python process would mostly measure that process's own lock."""
    url = network.public(NODE.member_id)
    ca = str(network.layout.web.ca)
    stop_at = time.time() + args.duration + 2
    groups = [list(range(args.reporters))[i :: args.client_processes] for i in range(args.client_processes)]
    context = multiprocessing.get_context("spawn")
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    with context.Pool(len(groups)) as pool:
        results = pool.starmap(reporters_in_one_process, [(url, ca, group, think, stop_at) for group in groups])
    wall = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    latencies = [value for values, _ in results for value in values]
    failures = [failure for _, found in results for failure in found]
    if not latencies:
        raise RuntimeError(f"no report went through: {failures[:3]}")
    return {
        "reporters": args.reporters,
        "think_s": think,
        "submits": len(latencies),
        "failures": len(failures),
        "failure_example": failures[0] if failures else "",
        "submits_per_s": len(latencies) / wall,
        "median_ms": statistics.median(latencies),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
        "server_cpu_share": cpu / wall,
        "server_cpu_ms_per_submit": cpu / len(latencies) * 1000,
    }


def floor(network: Network, args: argparse.Namespace) -> dict[str, float]:
    """The least a batch can cost here: moving its bytes over HTTPS, checking each item, one insert."""
    from cheroot import wsgi
    from cheroot.ssl.builtin import BuiltinSSLAdapter

    layout = network.layout

    def trivial(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
        return [b"{}"]

    server = wsgi.Server(("127.0.0.1", 0), trivial, numthreads=4)
    adapter = BuiltinSSLAdapter(str(layout.web.cert), str(layout.web.key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(layout.web.cert), str(layout.web.key))
    adapter.context = context
    server.ssl_adapter = adapter
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    port = server.bind_addr[1]
    body = json.dumps(batch(0, args.batch, "floor")).encode()
    session = requests.Session()
    session.trust_env = False
    target = f"https://127.0.0.1:{port}/"
    headers = {"Content-Type": "application/json"}
    post_us = per_call_us(lambda: session.post(target, data=body, headers=headers, verify=str(layout.web.ca)), 30)
    session.close()
    server.stop()
    items = batch(1, 200, "floor")["reports"]
    cycle = iter(range(10**9))

    def check_one() -> None:
        item = items[next(cycle) % len(items)]
        schemas.validate("partner-report", item)
        check_url(item["url"])

    per_item_us = per_call_us(check_one, 2000)
    with tempfile.TemporaryDirectory() as folder:
        connection = sqlite3.connect(Path(folder) / "floor.db")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(
            "CREATE TABLE t (id TEXT PRIMARY KEY, url TEXT, canonical TEXT, fingerprint TEXT, external_id TEXT, "
            "hashes TEXT, received_at TEXT, state TEXT)"
        )
        connection.execute("CREATE INDEX t_fp ON t (fingerprint)")
        rounds = iter(range(10**9))

        def insert() -> None:
            base = next(rounds) * args.batch
            with connection:
                connection.executemany(
                    "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (str(uuid.uuid4()), f"u{base + n}", f"c{base + n}", f"{base + n:064x}", "e", "[]", "t", "new")
                        for n in range(args.batch)
                    ],
                )

        insert_us = per_call_us(insert, 20)
        connection.close()
    per_report = post_us / args.batch + per_item_us + insert_us / args.batch
    return {
        "post_us": post_us,
        "per_item_check_us": per_item_us,
        "insert_batch_us": insert_us,
        "per_report_us": per_report,
        "reports_per_s": 1e6 / per_report,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/intake.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=1000, help="Reports per partner batch (default 1000).")
    parser.add_argument("--batches", type=int, default=20, help="Batches per round (default 20).")
    parser.add_argument("--reporters", type=int, default=50, help="Concurrent public reporters (default 50).")
    parser.add_argument("--think", type=float, default=1.0, help="Seconds a reporter takes between form and submit.")
    parser.add_argument("--duration", type=float, default=20.0, help="Seconds each public round lasts.")
    parser.add_argument(
        "--client-processes", type=int, default=5, help="Processes the reporters are spread over (default 5)."
    )
    parser.add_argument(
        "--setting", action="append", default=[], metavar="KEY=VALUE", help="A node setting (repeatable)."
    )
    parser.add_argument("--json", type=Path, help="Also write every figure to this file.")
    parser.add_argument("--keep", action="store_true", help="Keep the folder (logs, database).")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="intake-", dir=REPO / "var" / "bench" if (REPO / "var").exists() else None))
    facts = machine()
    say("Machine: " + "; ".join(f"{key} {value}" for key, value in facts.items()))
    settings = {
        # The bench is one partner and a crowd of reporters from one machine: lift the limits it would hit.
        "PARTNER_RATE_LIMIT": "100000/minute",
        "PUBLIC_RATE_LIMIT_REPORTS": "100000/minute",
        "LOG_LEVEL": "WARNING",
        **settings_from(args.setting),
    }
    layout = lay_out(root, members=(NODE,), settings=settings)
    register_members(layout)
    network = Network(layout)
    try:
        network.public(NODE.member_id)
        pid = network.processes[NODE.member_id].surfaces["public"].process.pid
        say("Measuring the floor…")
        floor_figures = floor(network, args)
        say("Partner batches…")
        partner = [partner_round(network, args, pid, clients) for clients in (1, 2)]
        database = layout.members[NODE.member_id].database.removeprefix("sqlite:///")
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            stored = connection.execute("SELECT count(*) FROM submissions WHERE source = 'partner'").fetchone()[0]
        say(f"Public reporters ({args.reporters}, think {args.think} s)…")
        public = public_phase(network, args, pid, args.think)
        say(f"Public reporters ({args.reporters}, no think time)…")
        saturated = public_phase(network, args, pid, 0.0)
    finally:
        network.stop()
    say(f"\nMachine load at the end: {load_average()}")
    say("\n== Floor (same run, same machine) ==")
    show_table(
        ("component", "µs", "note"),
        [
            (f"HTTPS POST of a {args.batch}-report body", f"{floor_figures['post_us']:.0f}", "trivial WSGI app"),
            ("checks per report", f"{floor_figures['per_item_check_us']:.1f}", "schema, canonical URL, fingerprint"),
            (f"SQLite insert of {args.batch} rows", f"{floor_figures['insert_batch_us']:.0f}", "one transaction, WAL"),
            (
                "floor per report",
                f"{floor_figures['per_report_us']:.1f}",
                f"= {floor_figures['reports_per_s']:.0f} reports/s on one core",
            ),
        ],
    )
    say("\n== 1. Partner batch intake (POST /api/v1/reports/batch) ==")
    show_table(
        ("clients", "batches", "reports", "reports/s", "batch ms med", "batch ms max", "CPU µs/report", "CPU"),
        [
            (
                r["clients"],
                r["batches"],
                r["reports"],
                f"{r['reports_per_s']:.0f}",
                f"{r['batch_ms_median']:.0f}",
                f"{r['batch_ms_max']:.0f}",
                f"{r['server_cpu_us_per_report']:.0f}",
                f"{r['server_cpu_share']:.0%}",
            )
            for r in partner
        ],
    )
    say(f"  rows stored from partners: {stored}")
    say("\n== 2. The public page's submit (form loaded, then POST and the confirmation page) ==")
    show_table(
        ("reporters", "think s", "submits", "submits/s", "median ms", "p95 ms", "p99 ms", "CPU ms/submit", "failed"),
        [
            (
                r["reporters"],
                f"{r['think_s']:.1f}",
                r["submits"],
                f"{r['submits_per_s']:.1f}",
                f"{r['median_ms']:.1f}",
                f"{r['p95_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                f"{r['server_cpu_ms_per_submit']:.2f}",
                r["failures"],
            )
            for r in (public, saturated)
        ],
    )
    best = max(r["reports_per_s"] for r in partner)
    say("\n== Targets ==")
    say(f"  partner batch intake >= 2,000 reports/s: best {best:.0f}/s -> {'met' if best >= 2000 else 'NOT met'}")
    say(
        f"  public submit p95 < 100 ms with {args.reporters} reporters: {public['p95_ms']:.1f} ms -> "
        f"{'met' if public['p95_ms'] < 100 else 'NOT met'} (no think time: {saturated['p95_ms']:.1f} ms)"
    )
    record_target(
        "partner batch intake >= 2,000 reports/s", f"{best:.0f}/s (batches of 1,000)", best >= 2000, source="intake.py"
    )
    record_target(
        "public submit p95 < 100 ms with 50 reporters",
        f"p95 {public['p95_ms']:.1f} ms ({args.reporters} reporters)",
        public["p95_ms"] < 100,
        source="intake.py",
    )
    if args.json:
        figures = {"machine": facts, "floor": floor_figures, "partner": partner, "public": [public, saturated]}
        args.json.write_text(json.dumps(figures, indent=2))
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
