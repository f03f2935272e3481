"""The table ``make bench`` ends with: every target, met or not, with the value measured in this run.

Each bench script records what it measured (``bench.measure.record_target``) in ``var/bench/targets.jsonl``;
``--reset`` empties it at the start of a run. Targets that no script measures yet are listed too, as not
measured, so the table never hides a target.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # Runnable as ``python bench/targets.py`` (as make bench runs it).
    sys.path.insert(0, str(REPO))

from bench.measure import TARGETS_FILE, say, show_table  # noqa: E402

EXPECTED = [
    ("throughput.py", "exchange accepts and routes >= 1,000 reports/s (transactions of 50)"),
    ("throughput.py", "single-report transaction within 2x the floor (server CPU and latency)"),
    ("throughput.py", "median end-to-end delivery < 100 ms at light load"),
    ("throughput.py", "end to end >= 1,000 reports/s (operator batches at a node -> stored at the destination)"),
    ("intake.py", "partner batch intake >= 2,000 reports/s"),
    ("intake.py", "public submit p95 < 100 ms with 50 reporters"),
    ("cases.py", "every queue and case page p95 < 200 ms at 100,000 cases"),
    ("cases.py", "prefix lookup for one case p95 < 5 ms at 10 million fingerprints"),
    ("dashboard.py", "every dashboard page and API call p95 < 300 ms at 1 million cases (SQLite and PostgreSQL)"),
    (
        "ingest.py",
        "exchange ingest per report within 20% of empty-store cost at 10 million cases (SQLite, PostgreSQL)",
    ),
    ("exchanges.py", "two exchange processes on one PostgreSQL against one"),
    (
        "soak.py",
        "10-minute soak at 80% of the maximum with members killed: memory flat, latency stable, nothing lost",
    ),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/targets.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reset", action="store_true", help="start a new run: forget what earlier runs recorded")
    args = parser.parse_args(argv)
    if args.reset:
        TARGETS_FILE.unlink(missing_ok=True)
        return 0
    recorded: dict[str, dict[str, str]] = {}
    if TARGETS_FILE.exists():
        for line in TARGETS_FILE.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            recorded[entry["target"]] = entry  # The latest measurement of a target wins.
    rows = []
    for source, target in EXPECTED:
        entry = recorded.pop(target, None)
        if entry is None:
            rows.append((target, "not measured", "-", source))
        else:
            rows.append((target, entry["measured"], "met" if entry["met"] else "NOT MET", entry["source"]))
    for target, entry in recorded.items():
        rows.append((target, entry["measured"], "met" if entry["met"] else "NOT MET", entry["source"]))
    say("\n== Targets (this run) ==")
    show_table(["target", "measured", "verdict", "bench"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
