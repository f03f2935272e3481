"""The list of reports sent abroad, and the home page's counts of those awaiting a receipt or refused, as
reports accumulate: read in the list's order from an index and counted from a partial one, on SQLite and
on PostgreSQL, never by sorting or grouping every report ever sent."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from console import paginate
from node.reports.models import Report, is_waiting
from node.reports.views import sent_list
from tests.conftest import query_plan

SORTED = re.compile(r"TEMP B-TREE|Sort  \(|Sort Key|HashAggregate")
SCANNED = re.compile(r"SCAN reports(?! USING)|Seq Scan on reports")


def test_the_sent_list_and_the_waiting_counts_are_read_from_indexes(store: Any) -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    # 6,000 reports over 250 days, two at each moment (the id breaks the tie); a few still waiting.
    states = {n: "received" for n in range(6000)} | {n: "sent" for n in (5990, 5995, 5999)} | {17: "refused"}
    rows = [
        {
            "id": f"report-{n:05d}",
            "url": f"http://many.example/{n}",
            "canonical_url": f"http://many.example/{n}",
            "url_fingerprint": f"{n:064x}",
            "hosting_country": "DE",
            "legal_status": "baseline",
            "priority": "normal",
            "content_hashes": [],
            "details": {},
            "confirmed_at": start + dt.timedelta(hours=n // 2),
            "state": state,
        }
        for n, state in states.items()
    ]
    filters = {"state": "", "country": "", "priority": "", "q": ""}
    waiting = select(Report.state, func.count()).where(is_waiting()).group_by(Report.state)
    with Session(store("node")) as session:
        session.execute(insert(Report), rows)
        session.commit()
        page = paginate(session, sent_list(filters), number=1, size=4)
        assert page.total == 6000
        assert [report.id for report in page.items] == ["report-05999", "report-05998", "report-05997", "report-05996"]
        assert dict(session.execute(waiting).all()) == {"sent": 3, "refused": 1}
        plans = {
            "list": query_plan(session, lambda: session.scalars(sent_list(filters).limit(50)).all()),
            "waiting counts": query_plan(session, lambda: session.execute(waiting).all()),
        }
    assert "ix_reports_order" in plans["list"], plans["list"]
    assert "ix_reports_waiting" in plans["waiting counts"], plans["waiting counts"]
    for name, plan in plans.items():
        assert not SCANNED.search(plan), (name, plan)
    assert not SORTED.search(plans["list"]), plans["list"]
