"""``make bench-soak``: a sustained run at 80 % of the measured maximum, with members killed and restarted.

1. **The network.** Exchange, hotline-nl and hotline-de as separate processes (network and worker
   surfaces each, hotline-nl's console for its operator API), on SQLite, with a throwaway dev PKI.
2. **The maximum, in the same run.** ``--burst`` reports submitted as fast as hotline-nl's operator batch
   API takes them (4 threads, 500 per request); the rate at which they are stored at hotline-de is the
   maximum. The soak's rate is ``--load`` (default 0.8) of it. The burst lasts long enough that the
   maximum is one the network sustains with its periodic jobs (the status roll-up every minute,
   checkpoints, receipts) running: 6,000-report bursts (about 25 s at 250/s) gave maxima of 204–281/s on
   one machine in one afternoon. The first burst has 15,000 reports; when it took less than a minute
   (13–14 s at 1,059–1,164/s on 2026-12-02's machine, whose soak at 80 % of 1,164/s then could not drain
   an outage's backlog), a second burst sized to last a minute at the first one's rate measures the
   maximum instead.
3. **The soak.** ``--minutes`` of reports at that rate, one batch request every half second. During it,
   with SIGKILL (no clean-up: only what was committed survives), and restarted ``--down`` seconds later:
   hotline-de whole (its network and worker: reports for it queue at the exchange), hotline-nl's worker
   (its outbox), hotline-de's worker (its receipts), hotline-nl's network surface (receipts queue for
   it). Every 5 s the resident memory (RSS) of every process is sampled.
4. **After.** The bench waits until every report is stored at hotline-de and its receipt is back at
   hotline-nl, then prints: per 30 s of submission, the reports and the median and p99 of the time from
   confirmation at hotline-nl to storage at hotline-de (database timestamps, one machine clock), marking
   the windows from a kill until the backlog it left has drained (every report submitted 2-4 s earlier
   has its receipt back at hotline-nl: sampled every second), and how long that took, and leaving out of
   a window's figures the reports that were on their way when a process was killed; each process's
   memory at its first minute (or a minute after its restart) and at the end; and whether anything was
   lost, doubled or left dead.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # Runnable as ``python bench/soak.py`` from anywhere.
    sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from bench.measure import (  # noqa: E402
    machine,
    parse_utc,
    percentile,
    read_only,
    record_target,
    say,
    settings_from,
    show_table,
    sqlite_path,
)
from bench.throughput import DESTINATION, EXCHANGE_ID, ORIGIN, Documents, count_rows, end_to_end, start_network  # noqa: E402
from demo.network import Network, OperatorClient  # noqa: E402
from federation.signing import Signer  # noqa: E402

TICK = 0.5
"""Seconds between two batch submissions during the soak."""
WINDOW = 30.0
"""Seconds of submissions per row of the latency table."""
DRAINED_SECONDS = 2.0
"""After a restart, the backlog counts as drained once every report submitted more than this many
seconds ago has its receipt back at the origin (in the steady state a receipt is back well within one)."""


@dataclass
class Submitted:
    ids: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, answer: requests.Response, chunk: list[dict[str, Any]]) -> None:
        with self.lock:
            if answer.status_code != 200:
                self.refused.extend([f"HTTP {answer.status_code}: {answer.text[:200]}"] * len(chunk))
                return
            for result in answer.json()["results"]:
                if result["outcome"] == "accepted":
                    self.ids.append(result["id"])
                else:
                    self.refused.append(str(result.get("error")))


def rss_mb(pid: int) -> float | None:
    """The process's private resident memory (RssAnon), in MB.

    Not VmRSS: that also counts the database file's pages SQLite reads through mmap, which belong to the
    kernel's page cache and grow with the store, not with the process.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def processes(network: Network) -> dict[str, int]:
    """Label → pid of every running surface process."""
    return {
        f"{member_id} {surface}": process.process.pid
        for member_id, service in network.processes.items()
        for surface, process in service.surfaces.items()
        if process.running
    }


def stored_count(destination_db: Path, ids: list[str]) -> int:
    return count_rows(
        destination_db,
        "SELECT count(*) FROM inbound_cases WHERE id IN (SELECT value FROM json_each(?))",
        (json.dumps(ids),),
    )


def wait_stored(destination_db: Path, ids: list[str], timeout: float) -> float | None:
    """Seconds until every one of ``ids`` is stored at the destination (None: not within ``timeout``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if stored_count(destination_db, ids) >= len(ids):
            return time.monotonic() - started
        time.sleep(0.05)
    return None


BURST_SECONDS = 60.0
"""The shortest burst that measures the maximum: the exchange's status roll-up runs once a minute."""


def maximum_rate(layout: Any, network: Network, docs: Documents, first: int) -> tuple[float, int]:
    """The network's maximum end to end, from a burst of ``first`` reports, or from a second burst sized to
    last BURST_SECONDS when the first was over sooner; and the size of the burst it came from."""
    rate = burst(layout, network, docs, first)
    if first / rate >= BURST_SECONDS:
        return rate, first
    count = math.ceil(rate * BURST_SECONDS / 1000) * 1000  # Whole thousands, rounded up.
    say(f"  {first:,} reports took {first / rate:.0f} s ({rate:.0f}/s): measuring again with {count:,}…")
    return burst(layout, network, docs, count), count


def burst(layout: Any, network: Network, docs: Documents, count: int) -> float:
    """Reports per second stored at the destination when hotline-nl's API is given ``count`` at once: the
    throughput bench's end-to-end phase (4 operator threads, 500 reports per request)."""
    phase = argparse.Namespace(light_reports=5, e2e_reports=count, e2e_threads=4, e2e_batch=500, e2e_timeout=300.0)
    result = end_to_end(layout, network, docs, phase)
    if result.stored < count:
        raise RuntimeError(f"only {result.stored} of {count} reports stored at the destination within 300 s")
    return result.stored / result.delivered_wall


@dataclass
class Kill:
    at: float
    member_id: str
    surfaces: tuple[str, ...]
    label: str
    restarted_at: float | None = None
    drained_at: float | None = None
    """When the backlog the outage left had drained (None: not before the soak ended)."""


def schedule(minutes: float, down: float) -> list[Kill]:
    total = minutes * 60
    return [
        Kill(0.15 * total, DESTINATION.member_id, ("network", "worker"), f"{DESTINATION.member_id} whole"),
        Kill(0.40 * total, ORIGIN.member_id, ("worker",), f"{ORIGIN.member_id} worker"),
        Kill(0.60 * total, DESTINATION.member_id, ("worker",), f"{DESTINATION.member_id} worker"),
        Kill(0.80 * total, ORIGIN.member_id, ("network",), f"{ORIGIN.member_id} network"),
    ]


def soak(layout: Any, network: Network, docs: Documents, rate: float, args: argparse.Namespace) -> dict[str, Any]:
    operator = OperatorClient(layout.members[ORIGIN.member_id], layout.web.ca)
    submitted = Submitted()
    kills = schedule(args.minutes, args.down)
    memory: dict[str, list[tuple[float, float]]] = {}
    started = time.monotonic()
    duration = args.minutes * 60
    stop = threading.Event()
    carry = 0.0

    def sampler() -> None:
        while not stop.is_set():
            now = time.monotonic() - started
            for label, pid in processes(network).items():
                value = rss_mb(pid)
                if value is not None:
                    memory.setdefault(f"{label} [{pid}]", []).append((now, value))
            stop.wait(5)

    origin_db = sqlite_path(layout.members[ORIGIN.member_id].database)
    sent: list[tuple[float, str]] = []  # (seconds into the soak, report id), appended in order

    def all_back(ids: list[str]) -> bool:
        """Whether every one of ``ids`` has its receipt back at the origin (stored at the destination, and
        the receipt returned through the exchange)."""
        missing = count_rows(
            origin_db,
            "SELECT count(*) FROM reports WHERE received_at IS NULL AND id IN (SELECT value FROM json_each(?))",
            (json.dumps(ids),),
        )
        return missing == 0

    def watcher() -> None:
        """Every second from a restart until its outage's backlog drained: queues are first in, first out,
        so the backlog is drained once every report submitted two to four seconds ago has its receipt
        back (nothing older waits, and what is younger is the steady flow). A bounded sample, so the
        bench's own load stays the same however long the backlog lasts."""
        while not stop.is_set():
            now = time.monotonic() - started
            recent = [report_id for at, report_id in sent[-int(5 * rate) :] if now - 4 <= at <= now - DRAINED_SECONDS]
            for kill in kills:
                if kill.restarted_at is None or kill.drained_at is not None or not recent:
                    continue
                if all_back(recent):
                    kill.drained_at = now
            stop.wait(1)

    def killer() -> None:
        for kill in kills:
            if stop.wait(max(0.0, kill.at - (time.monotonic() - started))):
                return
            service = network.processes[kill.member_id]
            for surface in kill.surfaces:
                service.surfaces[surface].kill()
            say(f"  {time.monotonic() - started:5.0f} s  killed {kill.label} (SIGKILL)")
            if stop.wait(args.down):
                return
            service.start(kill.surfaces)
            for surface in kill.surfaces:
                service.surfaces[surface].wait_ready(60)
            kill.restarted_at = time.monotonic() - started
            say(f"  {kill.restarted_at:5.0f} s  restarted {kill.label}")

    helpers = [threading.Thread(target=target, daemon=True) for target in (sampler, killer, watcher)]
    for thread in helpers:
        thread.start()
    late = 0
    try:
        tick = 0
        while (elapsed := time.monotonic() - started) < duration:
            carry += rate * TICK
            count, carry = int(carry), carry - int(carry)
            chunk = [docs.report_input() for _ in range(count)]
            if chunk:
                answer = operator.request("POST", "/api/v1/reports/batch", json={"reports": chunk})
                before = len(submitted.ids)
                submitted.add(answer, chunk)
                sent.extend((elapsed, report_id) for report_id in submitted.ids[before:])
            tick += 1
            pause = started + tick * TICK - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                late += 1
    finally:
        stop.set()
        operator.close()
    for thread in helpers:
        thread.join(timeout=120)
    soak_wall = time.monotonic() - started
    say(f"  soak over after {soak_wall:.0f} s: {len(submitted.ids):,} reports accepted, waiting for the rest…")
    return {
        "submitted": submitted,
        "submit_times": {report_id: at for at, report_id in sent},
        "kills": kills,
        "memory": memory,
        "late_ticks": late,
        "soak_wall": soak_wall,
    }


def latencies(layout: Any, ids: list[str]) -> dict[str, float]:
    """Report id → ms from confirmation at hotline-nl to storage at hotline-de."""
    wanted = (json.dumps(ids),)
    origin_db = sqlite_path(layout.members[ORIGIN.member_id].database)
    destination_db = sqlite_path(layout.members[DESTINATION.member_id].database)
    with read_only(origin_db) as connection:
        confirmed = dict(
            connection.execute(
                "SELECT id, confirmed_at FROM reports WHERE id IN (SELECT value FROM json_each(?))", wanted
            )
        )
    with read_only(destination_db) as connection:
        received = dict(
            connection.execute(
                "SELECT id, received_at FROM inbound_cases WHERE id IN (SELECT value FROM json_each(?))", wanted
            )
        )
    return {
        key: (parse_utc(received[key]) - parse_utc(confirmed[key])).total_seconds() * 1000
        for key in ids
        if key in received and key in confirmed
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/soak.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak (default 10)")
    parser.add_argument("--load", type=float, default=0.8, help="share of the measured maximum (default 0.8)")
    parser.add_argument(
        "--burst",
        type=int,
        default=15000,
        help="reports in the first burst that measures the maximum (default 15000; when it is over in less"
        " than a minute, a second burst sized to last one measures it, so the workers' periodic jobs run during it)",
    )
    parser.add_argument("--down", type=float, default=10.0, help="seconds a killed process stays down")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="service setting for every process (e.g. STATUS_ROLLUP_SECONDS=3600); repeatable",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run folder (databases, logs)")
    args = parser.parse_args(argv)
    say(json.dumps(machine()))
    base = REPO / "var" / "bench"
    base.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=time.strftime("soak-%Y%m%d-%H%M%S-"), dir=base))
    settings = {"RATE_LIMIT_TRANSACTIONS": "100000/second", **settings_from(args.setting)}
    layout, network = start_network(root, settings)
    succeeded = False
    try:
        network.client(ORIGIN.member_id)  # Starts hotline-nl's console.
        member = layout.members[ORIGIN.member_id]
        docs = Documents(Signer.from_files(member.key, member.cert), hashes=1)
        destination_db = sqlite_path(layout.members[DESTINATION.member_id].database)
        origin_db = sqlite_path(layout.members[ORIGIN.member_id].database)
        say(f"Measuring the maximum: {args.burst:,} reports at once through hotline-nl's batch API…")
        maximum, burst_size = maximum_rate(layout, network, docs, args.burst)
        rate = args.load * maximum
        say(
            f"  maximum {maximum:.0f} reports/s end to end (a burst of {burst_size:,});"
            f" the soak runs at {rate:.0f}/s for {args.minutes:g} min"
        )
        time.sleep(3)
        result = soak(layout, network, docs, rate, args)
        ids = result["submitted"].ids
        drained = wait_stored(destination_db, ids, 600)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            missing_receipts = count_rows(
                origin_db,
                "SELECT count(*) FROM reports WHERE received_at IS NULL AND id IN (SELECT value FROM json_each(?))",
                (json.dumps(ids),),
            )
            if missing_receipts == 0:
                break
            time.sleep(0.2)
        times = latencies(layout, ids)
        exchange_db = sqlite_path(layout.exchange.database)
        dead = {
            member_id: count_rows(sqlite_path(spec.database), "SELECT count(*) FROM outbox WHERE state = 'dead'")
            for member_id, spec in [(EXCHANGE_ID, layout.exchange), *layout.members.items()]
        }
        routed = count_rows(
            exchange_db,
            "SELECT count(*) FROM case_reports WHERE report_id IN (SELECT value FROM json_each(?))",
            (json.dumps(ids),),
        )
        inbound = count_rows(
            destination_db,
            "SELECT count(*) FROM inbound_reports WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(ids),),
        )
        stored = stored_count(destination_db, ids)
        report(args, maximum, rate, result, times, drained, missing_receipts, dead, routed, inbound, stored)
        succeeded = True
    finally:
        network.stop()
        if succeeded and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            say(f"Kept {root} (logs in logs/).")
    return 0


def _drained(kill: Kill) -> float:
    return kill.drained_at if kill.drained_at is not None else float("inf")


def latency_stable(quiet_medians: list[float], quiet_p99s: list[float], kills: list[Kill]) -> bool:
    """The soak's latency criterion: in the windows no outage disturbed, medians within 2× and p99s within 3×
    of each other, and every outage's backlog drained before the soak ended. A backlog that never drains
    means the network no longer keeps up: the windows after it are all "disturbed", and comparing the few
    before it alone would call that stable."""
    return (
        bool(quiet_medians)
        and max(quiet_medians) <= 2 * min(quiet_medians)
        and max(quiet_p99s) <= 3 * min(quiet_p99s)
        and all(kill.drained_at is not None for kill in kills)
    )


def report(
    args: argparse.Namespace,
    maximum: float,
    rate: float,
    result: dict[str, Any],
    times: dict[str, float],
    drained: float | None,
    missing_receipts: int,
    dead: dict[str, int],
    routed: int,
    inbound: int,
    stored: int,
) -> None:
    submitted: Submitted = result["submitted"]
    kills: list[Kill] = result["kills"]
    ids = submitted.ids
    say(f"\n== Soak: {args.minutes:g} min at {rate:.0f} reports/s ({args.load:.0%} of the {maximum:.0f}/s maximum) ==")
    say(f"  late submission ticks (the API took longer than {TICK} s): {result['late_ticks']}")
    for kill in kills:
        back = f"restarted at {kill.restarted_at:.0f} s" if kill.restarted_at is not None else "not restarted"
        recovery = (
            f"its backlog drained {kill.drained_at - kill.restarted_at:.0f} s later"
            if kill.drained_at is not None and kill.restarted_at is not None
            else "its backlog NOT drained before the soak ended"
        )
        say(f"  killed {kill.label} at {kill.at:.0f} s, {back}; {recovery}")
    rows = []
    quiet_medians, quiet_p99s = [], []
    by_window: dict[int, list[float]] = {}
    in_flight: dict[int, int] = {}
    for report_id in ids:
        if report_id not in times:
            continue
        submitted_at, took = result["submit_times"][report_id], times[report_id]
        window = int(submitted_at // WINDOW)
        # A report still on its way when a process was killed waited for the restart: it measures the outage,
        # not the steady state (the window before each kill would otherwise hold a few seconds of them).
        if any(submitted_at < k.at < submitted_at + took / 1000 for k in kills):
            in_flight[window] = in_flight.get(window, 0) + 1
            continue
        by_window.setdefault(window, []).append(took)
    for window, chosen in sorted(by_window.items()):
        start, end = window * WINDOW, (window + 1) * WINDOW
        # A window is disturbed from a kill until the backlog it left has drained (reports submitted then
        # wait behind it); that recovery time is a figure of its own, printed above.
        events = [k.label for k in kills if start < _drained(k) and end > k.at]
        median, p99 = statistics.median(chosen), percentile(chosen, 0.99)
        if not events:
            quiet_medians.append(median)
            quiet_p99s.append(p99)
        rows.append(
            (
                f"{start:.0f}-{end:.0f} s",
                len(chosen),
                in_flight.get(window, 0),
                f"{median:.0f}",
                f"{p99:.0f}",
                ", ".join(events) or "-",
            )
        )
    show_table(
        ["submitted", "reports", "in flight at a kill (left out)", "median ms", "p99 ms", "down, or not drained"],
        rows,
    )
    memory_rows = []
    flat = True
    for label, samples in sorted(result["memory"].items()):
        first_at = samples[0][0]
        settled = [value for at, value in samples if at >= first_at + 60] or [samples[-1][1]]
        start_mb, end_mb, peak = settled[0], settled[-1], max(value for _, value in samples)
        growth = end_mb - start_mb
        long_enough = samples[-1][0] - first_at >= 180
        if long_enough and growth > max(10.0, 0.10 * start_mb):
            flat = False
        memory_rows.append(
            (
                label,
                f"{first_at:.0f}-{samples[-1][0]:.0f} s",
                f"{start_mb:.1f}",
                f"{settled[len(settled) // 2]:.1f}",
                f"{end_mb:.1f}",
                f"{peak:.1f}",
                f"{growth:+.1f}",
            )
        )
    say("\nPrivate resident memory (RssAnon) of every process (MB; 'start' is a minute after the process started):")
    show_table(["process [pid]", "sampled", "start", "halfway", "end", "peak", "growth"], memory_rows)
    lost = len(ids) - stored
    say(
        f"\n  reports accepted {len(ids):,}; stored at {DESTINATION.member_id} {stored:,}"
        f" (all within {drained:.1f} s of the soak's end)"
        if drained is not None
        else f"\n  reports accepted {len(ids):,}; stored at {DESTINATION.member_id} {stored:,} (NOT all within 600 s)"
    )
    say(
        f"  routed at the exchange {routed:,}, inbound reports at {DESTINATION.member_id} {inbound:,}"
        " (each exactly once)"
    )
    say(
        f"  receipts not back at {ORIGIN.member_id}: {missing_receipts}; dead letters: {dead};"
        f" refused: {len(submitted.refused)}"
    )
    stable = latency_stable(quiet_medians, quiet_p99s, kills)
    nothing_lost = lost == 0 and missing_receipts == 0 and routed == inbound == len(ids) and not any(dead.values())
    say(
        "  memory flat (no process grew more than 10 MB or 10 % after its first minute, over 3 minutes or more):"
        f" {flat};"
        f" latency stable (undisturbed windows: medians within 2x, p99 within 3x of each other; every backlog"
        f" drained): {stable};"
        f" nothing lost or doubled: {nothing_lost}"
    )
    if args.minutes >= 10 and not args.setting:
        record_target(
            "10-minute soak at 80% of the maximum with members killed: memory flat, latency stable, nothing lost",
            f"{rate:.0f}/s for {args.minutes:g} min, 4 kills; median {min(quiet_medians or [0]):.0f}-"
            f"{max(quiet_medians or [0]):.0f} ms, p99 up to {max(quiet_p99s or [0]):.0f} ms (undisturbed windows);"
            f" backlogs drained {sum(kill.drained_at is not None for kill in kills)} of {len(kills)};"
            f" memory flat {flat}; lost {lost}",
            flat and stable and nothing_lost,
            source="soak.py",
        )


if __name__ == "__main__":
    sys.exit(main())
