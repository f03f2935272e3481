"""Exactly one worker per deployment: a second one waits, and takes over when the first dies.

Real processes, on SQLite (a file lock) and on PostgreSQL (an advisory lock). The web processes never
send anything themselves, so a report that reaches its destination proves a worker was woken and sent it.
"""

from __future__ import annotations

import time
from typing import Any

from demo.network import ServiceProcess
from tests.test_routing import wait_until


def test_a_second_worker_waits_and_takes_over_when_the_first_dies(network_factory: Any) -> None:
    network = network_factory()
    network.start("exchange", "hotline-nl", "hotline-de")
    layout = network.layout
    standby = ServiceProcess(
        layout.exchange, "worker", layout.root / "logs", label="exchange-standby", launcher=network.launcher
    )
    standby.start()
    try:
        wait_until(
            lambda: "another worker holds" in standby.log_path.read_text() if standby.log_path.exists() else False,
            what="the standby worker waiting on the lock",
        )
        nl, de = network.client("hotline-nl"), network.client("hotline-de")
        first = nl.report(url="http://one-worker.example/1", hosting_country="DE", legal_status="baseline")
        de.wait_for(f"/api/v1/received/{first['id']}", lambda c: True)
        assert "worker started" not in standby.log_path.read_text()  # Still waiting: only one worker ran.

        network.processes["exchange"].surfaces["worker"].kill()
        started = time.monotonic()
        standby.wait_ready(timeout=20)  # "worker started": it took the lock.
        assert time.monotonic() - started < 10
        second = nl.report(url="http://one-worker.example/2", hosting_country="DE", legal_status="baseline")
        de.wait_for(f"/api/v1/received/{second['id']}", lambda c: True)
        nl.wait_for(f"/api/v1/reports/{second['id']}", lambda r: r["received_at"] is not None)
    finally:
        standby.stop()
