"""The list of cases received from abroad, and the counts of the open ones, as cases accumulate: read in the
list's order from an index, on SQLite and on PostgreSQL, never by sorting or counting every case."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from console import paginate
from node.received.models import FINISHED, InboundCase, is_open
from node.received.views import received_list
from tests.conftest import query_plan, received_case_row

SORTED = re.compile(r"TEMP B-TREE|Sort  \(|Sort Key")
SCANNED = re.compile(r"SCAN inbound_cases(?! USING)|Seq Scan on inbound_cases")


def test_the_received_list_and_its_open_counts_are_read_in_order_from_indexes(store: Any) -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    # 6,000 cases over 300 days, most of them finished long ago; every 50th urgent.
    cases = []
    for n in range(6000):
        status = FINISHED[n % 3] if n < 5400 else ("received", "ntd_sent", "reappeared")[n % 3]
        cases.append((f"case-{n:05d}", "urgent" if n % 50 == 0 else "normal", status, start + dt.timedelta(hours=n)))
    with Session(store("node")) as session:
        session.execute(
            insert(InboundCase),
            [
                received_case_row(case_id, n, status=status, at=at, priority=priority)
                for n, (case_id, priority, status, at) in enumerate(cases)
            ],
        )
        session.commit()
        filters = {"open": "", "status": "", "priority": "", "origin": "", "q": ""}
        everything = paginate(session, received_list(filters), number=1, size=50)
        urgent = [case_id for case_id, priority, _, _ in cases if priority == "urgent"]
        assert everything.total == 6000
        assert [case.id for case in everything.items] == urgent[:50]  # Urgent first, the oldest first.
        open_page = paginate(session, received_list(filters | {"open": "1"}), number=1, size=50)
        still_open = [c for c in cases if c[2] not in FINISHED]
        expected = [c[0] for c in still_open if c[1] == "urgent"] + [c[0] for c in still_open if c[1] == "normal"]
        assert open_page.total == 600 and [case.id for case in open_page.items] == expected[:50]
        count_open = select(func.count()).select_from(InboundCase).where(is_open())
        assert session.scalar(count_open) == 600
        plans = {
            "list": query_plan(session, lambda: session.scalars(received_list(filters).limit(50)).all()),
            "open list": query_plan(
                session, lambda: session.scalars(received_list(filters | {"open": "1"}).limit(50)).all()
            ),
            "open count": query_plan(session, lambda: session.scalar(count_open)),
            "urgent open count": query_plan(
                session, lambda: session.scalar(count_open.where(InboundCase.priority == "urgent"))
            ),
        }
    assert "ix_inbound_cases_queue" in plans["list"], plans["list"]
    for name in ("open list", "open count", "urgent open count"):
        assert "ix_inbound_cases_open" in plans[name], (name, plans[name])
    for name, plan in plans.items():
        assert not SORTED.search(plan) and not SCANNED.search(plan), (name, plan)
