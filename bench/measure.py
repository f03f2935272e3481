"""What every benchmark script shares: CPU time from /proc, percentiles, the machine, tables."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sqlite3
import ssl
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")


def say(text: str = "") -> None:
    print(text, flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc (10 ms resolution)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def per_call_us(function: Callable[[], Any], count: int) -> float:
    """Median wall time of one call in microseconds, over ``count`` calls (after a short warm-up)."""
    for _ in range(min(50, count)):
        function()
    samples = []
    for _ in range(count):
        start = time.perf_counter_ns()
        function()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


def sqlite_path(database_url: str) -> Path:
    return Path(database_url.removeprefix("sqlite:///"))


@contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        yield connection
    finally:
        connection.close()


def parse_utc(value: str) -> dt.datetime:
    """SQLite keeps UTCDateTime columns as naive UTC strings."""
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)


def load_average() -> str:
    """Other work on the machine skews every figure: say how busy it was."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def machine() -> dict[str, str]:
    model = "unknown"
    with suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = {}
    for package in ("cryptography", "PyNaCl", "joserfc", "jsonschema", "cheroot", "SQLAlchemy", "Flask", "requests"):
        with suppress(Exception):
            from importlib.metadata import version

            versions[package] = version(package)
    return {
        "cpu": model,
        "cores": f"{usable} usable ({os.cpu_count()} online)",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "openssl": ssl.OPENSSL_VERSION,
        "sqlite": sqlite3.sqlite_version,
        "kernel": f"{platform.system()} {platform.release()}",
        "load": load_average(),
        "libraries": ", ".join(f"{name} {value}" for name, value in versions.items()),
    }


def show_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(header), *(len(row[index]) for row in cells)) for index, header in enumerate(headers)]
    say(
        "  "
        + "  ".join(
            header.ljust(width) if index == 0 else header.rjust(width)
            for index, (header, width) in enumerate(zip(headers, widths, strict=True))
        )
    )
    say("  " + "  ".join("-" * width for width in widths))
    for row in cells:
        say(
            "  "
            + "  ".join(
                cell.ljust(width) if index == 0 else cell.rjust(width)
                for index, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
        )


def ms_summary(values: list[float]) -> tuple[str, str, str]:
    if not values:
        return ("-", "-", "-")
    return (f"{statistics.median(values):.1f}", f"{percentile(values, 0.99):.1f}", f"{max(values):.1f}")


def settings_from(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs (``--setting``) as config values, JSON where they parse."""
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        try:
            settings[key] = json.loads(raw)
        except ValueError:
            settings[key] = raw
    return settings


TARGETS_FILE = Path(__file__).resolve().parents[1] / "var" / "bench" / "targets.jsonl"
"""Every target a bench script checked in this ``make bench``, one JSON line each (bench/targets.py prints them)."""


def record_target(target: str, measured: str, met: bool, *, source: str) -> None:
    """Note a target's outcome for the summary table ``make bench`` prints at the end."""
    TARGETS_FILE.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "target": target,
        "measured": measured,
        "met": met,
        "source": source,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load": load_average(),
    }
    with TARGETS_FILE.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
