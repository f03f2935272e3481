"""What the exchange forgets, it forgets: a delivered report's token is gone from the database files too.

The token (the origin's signed report, whose payload carries the URL) sits in the exchange's outbox until
the destination's receipt; then it is erased, and a checkpoint run by the worker makes sure no copy of it
survives in the SQLite database, its write-ahead log or free pages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import query
from tests.test_routing import wait_until


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_erased_token_leaves_no_trace_in_the_sqlite_files(network_factory: Any) -> None:
    network = network_factory(FORGET_SECONDS=0.5)
    network.start("exchange", "hotline-nl")  # hotline-de is down: the token waits in the exchange's outbox.
    nl = network.client("hotline-nl")
    url = "http://forget-me.example/" + "abcdefghij" * 20
    report = nl.report(url=url, hosting_country="DE", legal_status="baseline")
    exchange_db = network.layout.exchange.database
    queued = "SELECT token FROM outbox WHERE doc_id = :id AND token IS NOT NULL"
    wait_until(lambda: bool(query(exchange_db, queued, id=report["id"])), what="the report queued for hotline-de")
    token_part = query(exchange_db, queued, id=report["id"])[0][0].split(".")[1][40:120]
    network.start("hotline-de")
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["received_at"] is not None)
    wait_until(
        lambda: query(exchange_db, "SELECT count(*) FROM outbox WHERE token IS NOT NULL")[0][0] == 0,
        what="every token erased",
    )
    database = Path(exchange_db.removeprefix("sqlite:///"))
    files = [database, database.with_name(database.name + "-wal")]

    def traces() -> list[str]:
        found = []
        for path in files:
            data = path.read_bytes() if path.exists() else b""
            if token_part.encode() in data:
                found.append(path.name)
            if b"forget-me.example" in data:
                found.append(f"{path.name} (URL)")
        return found

    wait_until(lambda: traces() == [], timeout=10, what="no trace of the token in the files")
