"""The network status figures against a fixture whose every number was worked out by hand, on both backends.

Ten cases, their reports and a few outbox rows are inserted straight into the exchange's tables. The
comment above each assertion shows the hand computation; ``now`` is 2026-03-10 12:00 UTC, so a case is
*judged* for the 3-day removal share when it was first reported on or before 2026-03-07 12:00 or was
removed within 72 hours (likewise for police referral): c10, reported a day ago and still up, is not.
The figures are read from the cells the rollup builds (exchange.status.rollup); medians are of whole hours,
each duration rounded down, which the fixture's whole-hour delays leave as they are, and the last test
changes cases with fractions of an hour after a first run of the job.

    case  first report      route (hotline-)  host  legal     state        notice  removed  police  status
    c1    2026-01-05 00:00  nl -> de          DE    baseline  confirmed    +2 h    +10 h    +20 h   removed
    c2    2026-01-20 00:00  nl -> de          AT    baseline  confirmed    +5 h    +80 h    +100 h  removed
    c3    2026-02-01 00:00  fr -> de          DE    national  confirmed    +1 h    +30 h    -       removed
    c4    2026-02-14 00:00  de -> fr          FR    baseline  confirmed    -       +200 h   +48 h   removed
    c5    2026-02-28 12:00  nl -> fr          LU    baseline  confirmed    +3 h    -        +72 h   police_notified
    c6    2026-03-09 00:00  nl -> de          DE    baseline  confirmed    +2 h    +12 h    +6 h    removed
    c7    2026-01-10 00:00  fr -> nl          NL    baseline  REJECTED     -       +1 h     -       - (never counted)
    c8    2026-03-01 00:00  de -> secretariat US    baseline  provisional  -       -        -       -
    c9    2025-12-15 00:00  nl -> de          DE    baseline  confirmed    +24 h   +72 h    -       removed
    c10   2026-03-09 06:00  nl -> de          DE    baseline  confirmed    -       -        -       - (not judged)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

import exchange.audit.models
import exchange.cases.models
import exchange.members.models
import exchange.messaging.models  # noqa: F401 - registers the tables create_all makes.
from audit.services import AuditLog
from exchange.audit.models import AUDIT
from exchange.cases.models import REJECTED, Case, CaseReport
from exchange.db import db
from exchange.members.models import Member
from exchange.messaging.models import Outbox, Peer
from exchange.status.filters import FilterError, Filters, parse_filters, year_filters
from exchange.status.models import StatusCell, StatusHistogram, StatusRecent
from exchange.status.rollup import apply, rebuild, roll_up, survey
from exchange.status.services import median, network_status, years_with_cases
from service.database import configure_engine
from tests.conftest import PostgresDatabases

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
T = dt.datetime
NAT = "nationally_illegal"

CASES = [
    # id, first report, origin, destination, host, legal, state, notice h, removed h, police h, status
    ("c1", T(2026, 1, 5), "hotline-nl", "hotline-de", "DE", "baseline", "confirmed", 2, 10, 20, "removed"),
    ("c2", T(2026, 1, 20), "hotline-nl", "hotline-de", "AT", "baseline", "confirmed", 5, 80, 100, "removed"),
    ("c3", T(2026, 2, 1), "hotline-fr", "hotline-de", "DE", NAT, "confirmed", 1, 30, None, "removed"),
    ("c4", T(2026, 2, 14), "hotline-de", "hotline-fr", "FR", "baseline", "confirmed", None, 200, 48, "removed"),
    ("c5", T(2026, 2, 28, 12), "hotline-nl", "hotline-fr", "LU", "baseline", "confirmed", 3, None, 72, "police_notified"),  # noqa: E501
    ("c6", T(2026, 3, 9), "hotline-nl", "hotline-de", "DE", "baseline", "confirmed", 2, 12, 6, "removed"),
    ("c7", T(2026, 1, 10), "hotline-fr", "hotline-nl", "NL", "baseline", "rejected", None, 1, None, None),
    ("c8", T(2026, 3, 1), "hotline-de", "secretariat", "US", "baseline", "provisional", None, None, None, None),
    ("c9", T(2025, 12, 15), "hotline-nl", "hotline-de", "DE", "baseline", "confirmed", 24, 72, None, "removed"),
    ("c10", T(2026, 3, 9, 6), "hotline-nl", "hotline-de", "DE", "baseline", "confirmed", None, None, None, None),
]  # fmt: skip


def _at(first: dt.datetime, hours: int | None) -> dt.datetime | None:
    return None if hours is None else first + hours * H


def _fill(session: Session) -> None:
    for member_id, countries, fallback in (
        ("hotline-nl", ["NL"], False),
        ("hotline-de", ["DE", "AT"], False),
        ("hotline-fr", ["FR", "LU"], False),
        ("secretariat", [], True),
    ):
        session.add(Member(id=member_id, name=member_id, countries=countries, is_fallback=fallback, created_at=NOW))
    for case_id, naive, origin, destination, host, legal, state, notice, removed, police, status in CASES:
        first = naive.replace(tzinfo=dt.UTC)
        session.add(
            Case(
                id=case_id,
                url_fingerprint=hashlib.sha256(case_id.encode()).hexdigest(),
                origin=origin,
                destination=destination,
                hosting_country=host,
                legal_status=legal,
                priority="normal",
                state=state,
                confirmed_at=first,
                created_at=first,
                ntd_sent_at=_at(first, notice),
                removed_at=_at(first, removed),
                police_notified_at=_at(first, police),
                status=status,
            )
        )
        session.add(
            CaseReport(
                report_id=case_id,
                member=origin,
                case_id=case_id,
                received_at=first,
                hosting_country=host,
                priority="normal",
            )
        )
    session.flush()
    # Duplicates: verified ones are avoided work (c1, c3, c9); a pending one is not yet.
    for report_id, member, case_id, state in (
        ("d1", "hotline-fr", "c1", "verified"),
        ("d2", "hotline-de", "c1", "pending"),
        ("d3", "hotline-nl", "c3", "verified"),
        ("d4", "hotline-fr", "c9", "verified"),
    ):
        session.add(
            CaseReport(
                report_id=report_id,
                member=member,
                case_id=case_id,
                duplicate=True,
                state=state,
                received_at=NOW,
                hosting_country="DE",
                priority="normal",
            )
        )
    for destination, state, created in (
        ("hotline-de", "pending", NOW - 2 * H),
        ("hotline-de", "pending", NOW - H),
        ("hotline-fr", "dead", NOW - 5 * H),
        ("hotline-nl", "delivered", NOW - 3 * H),
    ):
        session.add(
            Outbox(
                destination=destination,
                author="exchange",
                doc_id=f"{destination}-{created:%H}",
                typ="t",
                state=state,
                created_at=created,
            )
        )
    session.add(
        Peer(
            member_id="hotline-de",
            failures=3,
            last_contact_at=NOW - 3 * H,
            certificate_not_after=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
        )
    )
    session.commit()


@contextmanager
def _database(backend: str, directory: Path) -> Iterator[Session]:
    """A filled exchange database on ``backend`` (no cells yet)."""
    postgres = PostgresDatabases()
    url = f"sqlite:///{directory / 'exchange.db'}" if backend == "sqlite" else postgres.create("status")
    engine = create_engine(url)
    configure_engine(engine)  # As the services run it: on SQLite, writers take the lock at BEGIN.
    db.metadata.create_all(engine)
    try:
        with Session(engine) as opened:
            _fill(opened)
            yield opened
    finally:
        engine.dispose()
        postgres.drop_all()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def session(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """The fixture with its cells built by the full rebuild."""
    with _database(request.param, Path(tmp_path_factory.mktemp("status"))) as opened:
        rebuild(opened, now=NOW)
        opened.commit()
        yield opened


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """The fixture without cells, for one test that changes it."""
    with _database(request.param, tmp_path) as opened:
        yield opened


def test_headline_figures(session: Session) -> None:
    cases = network_status(session, now=NOW)["cases"]
    # Live cases: every case but the rejected c7 -> c1 c2 c3 c4 c5 c6 c8 c9 c10 = 9.
    assert cases["total"] == 9
    # Removed: c1 c2 c3 c4 c6 c9 = 6.
    assert cases["removed"] == 6
    # Judged for removal: first reported on or before 2026-03-07 12:00 (c1 c2 c3 c4 c5 c8 c9 = 7), or removed
    # within 72 h (c6, reported 1.5 days ago, removed after 12 h) = 8; c10 is 1.25 days old and still up.
    assert cases["judged"] == 8
    # Removed within 72 h: c1 (10 h), c3 (30 h), c6 (12 h), c9 (72 h, the boundary counts) = 4;
    # not c2 (80 h), c4 (200 h), c5, c8 or c10 (not removed). 4 / 8 = 50.0%.
    assert (cases["removed_within_3_days"], cases["share_removed_within_3_days"]) == (4, 50.0)
    # Judged for police: the same 7 old cases, and c6 (referred after 6 h) = 8. Within 72 h: c1 (20 h),
    # c4 (48 h), c5 (72 h), c6 (6 h) = 4; not c2 (100 h). 4 / 8 = 50.0%.
    assert (cases["judged_police"], cases["police_within_3_days"], cases["share_police_within_3_days"]) == (8, 4, 50.0)
    # Hours to removal of the 6 removed, in order: 10 (c1), 12 (c6), 30 (c3), 72 (c9), 80 (c2), 200 (c4);
    # n = 6 is even, so the median is the mean of rows 3 and 4: (30 + 72) / 2 = 51.
    assert cases["median_hours_to_removal"] == 51.0
    # Notice to removal, where both exist: c1 10-2 = 8, c6 12-2 = 10, c3 30-1 = 29, c9 72-24 = 48, c2 80-5 = 75
    # (c5 has a notice but no removal, c4 a removal but no notice): 5 cases, the middle one is 29.
    assert (cases["removed_after_notice"], cases["median_hours_notice_to_removal"]) == (5, 29.0)
    # Verified duplicates of live cases: d1 (c1), d3 (c3), d4 (c9) = 3; d2 is still pending.
    assert cases["duplicates_avoided"] == 3
    # By hosting country: DE c1 c3 c6 c9 c10 = 5; AT c2, FR c4, LU c5, US c8 = 1 each (NL's c7 was rejected).
    assert cases["by_hosting_country"] == {"AT": 1, "DE": 5, "FR": 1, "LU": 1, "US": 1}
    # By origin: hotline-nl c1 c2 c5 c6 c9 c10 = 6; hotline-de c4 c8 = 2; hotline-fr c3 = 1 (c7 was rejected).
    assert cases["by_origin"] == {"hotline-de": 2, "hotline-fr": 1, "hotline-nl": 6}
    # By legal status: only c3 is nationally illegal; the other 8 are baseline.
    assert cases["by_legal_status"] == {"baseline": 8, "nationally_illegal": 1}
    # By state counts refused reports too (the API always has): 8 confirmed, c8 provisional, c7 rejected.
    assert cases["by_state"] == {"confirmed": 8, "provisional": 1, "rejected": 1}
    # By status: removed c1 c2 c3 c4 c6 c9 = 6; police_notified c5 = 1; c8 and c10 have none.
    assert cases["by_status"] == {"police_notified": 1, "removed": 6}


def test_months(session: Session) -> None:
    months = {row["month"]: row for row in network_status(session, now=NOW)["months"]}
    # 2025-12: c9. 2026-01: c1 c2. 2026-02: c3 c4 c5. 2026-03: c6 c8 c10.
    assert {month: row["cases"] for month, row in months.items()} == {
        "2025-12": 1,
        "2026-01": 2,
        "2026-02": 3,
        "2026-03": 3,
    }
    # 2026-01: c1 (10 h) within 3 days, c2 (80 h) not: 1 of 2 judged = 50.0%.
    assert (months["2026-01"]["removed_within_3_days"], months["2026-01"]["share_removed_within_3_days"]) == (1, 50.0)
    # 2026-02: c3 (30 h) within, c4 (200 h) and c5 (not removed) not: 1 of 3 = 33.3%; police c4 c5 = 2 of 3 = 66.7%.
    assert months["2026-02"]["share_removed_within_3_days"] == 33.3
    assert months["2026-02"]["share_police_within_3_days"] == 66.7
    # 2026-03: c6 (removed after 12 h) and c8 (old enough, not removed) are judged, c10 is not: 1 of 2 = 50.0%.
    march = months["2026-03"]
    assert (march["judged"], march["removed_within_3_days"], march["share_removed_within_3_days"]) == (2, 1, 50.0)


def test_members(session: Session) -> None:
    members = network_status(session, now=NOW)["members"]
    de = members["hotline-de"]
    # Queue: two pending rows (oldest 10:00), no dead letter; its peer row: 3 failures, contact at 09:00.
    assert (de["backlog"], de["dead_letters"], de["failing_deliveries"]) == (2, 0, 3)
    assert de["oldest_undelivered"].startswith("2026-03-10T10:00")
    assert de["last_contact"].startswith("2026-03-10T09:00")
    assert de["certificate_expires"].startswith("2027-01-01")
    # Routed to hotline-de: c1 c2 c3 c6 c9 c10 = 6, removed 5 (not c10); judged 5 (not c10); within 3 days
    # c1 c3 c6 c9 = 4 -> 80.0%; hours to removal 10 12 30 72 80 -> median 30.
    # Police: judged c1 c2 c3 c9 (old) and c6 (6 h) = 5; within 3 days c1 (20 h) and c6 = 2 -> 40.0%.
    assert de["content"] == {
        "cases": 6,
        "removed": 5,
        "judged": 5,
        "removed_within_3_days": 4,
        "share_removed_within_3_days": 80.0,
        "judged_police": 5,
        "police_within_3_days": 2,
        "share_police_within_3_days": 40.0,
        "median_hours_to_removal": 30.0,
    }
    # hotline-fr: c4 (200 h) and c5 (not removed): 0 of 2 within 3 days; median of one value, 200; a dead letter.
    fr = members["hotline-fr"]
    assert (fr["dead_letters"], fr["backlog"]) == (1, 0)
    assert (fr["content"]["cases"], fr["content"]["share_removed_within_3_days"]) == (2, 0.0)
    assert fr["content"]["median_hours_to_removal"] == 200.0
    # hotline-nl receives nothing (c7 was rejected): zeros and no median, and its delivered row is no backlog.
    assert members["hotline-nl"]["content"]["cases"] == 0 and members["hotline-nl"]["backlog"] == 0
    assert members["hotline-nl"]["content"]["median_hours_to_removal"] is None
    assert members["secretariat"]["fallback"] is True and members["secretariat"]["content"]["cases"] == 1


def test_filters_select_cases(session: Session) -> None:
    def cases(**args: str) -> dict:  # type: ignore[type-arg]
        return network_status(session, now=NOW, filters=parse_filters(args))["cases"]  # type: ignore[no-any-return]

    first_quarter = cases(**{"from": "2026-01", "to": "2026-02"})
    # c1 c2 c3 c4 c5: 5 cases, 4 removed; within 3 days c1 c3 = 2 of 5 judged = 40.0%; police c1 c4 c5 = 60.0%;
    # removal hours 10 30 80 200 -> (30 + 80) / 2 = 55; notice c1 8, c3 29, c2 75 -> 29; duplicates d1 d3 = 2.
    assert (first_quarter["total"], first_quarter["removed"]) == (5, 4)
    assert first_quarter["share_removed_within_3_days"] == 40.0
    assert first_quarter["share_police_within_3_days"] == 60.0
    assert first_quarter["median_hours_to_removal"] == 55.0
    assert first_quarter["median_hours_notice_to_removal"] == 29.0
    assert first_quarter["duplicates_avoided"] == 2
    # Hosted in DE: c1 c3 c6 c9 c10; judged c1 c3 c9 (old) and c6 (12 h), all removed within 3 days = 100.0%
    # (c10 is not judged); hours 10 12 30 72 -> (12 + 30) / 2 = 21.
    germany = cases(country="de")
    assert (germany["total"], germany["share_removed_within_3_days"], germany["median_hours_to_removal"]) == (
        5,
        100.0,
        21.0,
    )
    # Routed to hotline-fr and baseline: c4 c5. Reported by hotline-de: c4 c8. Nationally illegal: c3.
    assert cases(member="hotline-fr", legal="baseline")["total"] == 2
    assert cases(origin="hotline-de")["by_hosting_country"] == {"FR": 1, "US": 1}
    assert cases(legal="nationally_illegal")["total"] == 1
    # A member that has no cases: zeros and no medians, never an error.
    empty = cases(origin="hotline-xx")
    assert (empty["total"], empty["median_hours_to_removal"], empty["share_removed_within_3_days"]) == (0, None, None)


def test_the_year_2025(session: Session) -> None:
    # Only c9: removed after exactly 72 h (within 3 days), after a notice at 24 h (48 h), one duplicate.
    cases = network_status(session, now=NOW, filters=year_filters(2025))["cases"]
    assert (cases["total"], cases["share_removed_within_3_days"], cases["median_hours_to_removal"]) == (1, 100.0, 72.0)
    assert (cases["median_hours_notice_to_removal"], cases["duplicates_avoided"]) == (48.0, 1)
    assert years_with_cases(session) == [2026, 2025]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"from": "2026-13"}, "from"),
        ({"from": "last year"}, "from"),
        ({"to": "2026/02"}, "to"),
        ({"from": "2026-03", "to": "2026-01"}, "to"),
        ({"country": "Germany"}, "country"),
        ({"origin": "DROP TABLE"}, "origin"),
        ({"member": "x" * 80}, "member"),
        ({"legal": "legal"}, "legal"),
    ],
)
def test_a_bad_filter_names_its_field(args: dict[str, str], field: str) -> None:
    with pytest.raises(FilterError) as raised:
        parse_filters(args)
    assert field in raised.value.errors and raised.value.status == 400


def test_filters_round_trip_through_the_query_string() -> None:
    filters = parse_filters({"from": "2025", "to": "2026-02", "country": "de", "legal": "baseline"})
    assert filters.start == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert filters.end == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert filters.args() == {"from": "2025-01", "to": "2026-02", "country": "DE", "legal": "baseline"}
    assert parse_filters(filters.args()) == filters
    # A year as the last month means all of it.
    assert parse_filters({"to": "2025"}).end == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert Filters().describe() == "all cases"


def test_the_job_follows_the_audit_trail_and_the_rebuild_catches_the_rest(fresh: Session) -> None:
    # No position yet: the first run recomputes every month, and a run with nothing new recomputes none.
    assert roll_up(fresh, now=NOW).months is None
    fresh.commit()
    assert roll_up(fresh, now=NOW).months == []
    fresh.commit()
    assert network_status(fresh, now=NOW)["as_of"] == NOW.isoformat()
    before = network_status(fresh, now=NOW)["cases"]
    assert (before["removed"], before["judged"], before["removed_within_3_days"]) == (6, 8, 4)
    # Three days later and no run in between: c10 (first reported 2026-03-09 06:00) has had its three days,
    # so all 9 cases are judged: 4 / 9 = 44.4%.
    later = network_status(fresh, now=dt.datetime(2026, 3, 13, tzinfo=dt.UTC))["cases"]
    assert (later["judged"], later["share_removed_within_3_days"]) == (9, 44.4)

    # hotline-de removes c10 at 2026-03-10 11:59, 29 h 59 min after its first report, as the exchange
    # records it: the case row and its audit entry in one transaction.
    c10 = fresh.get(Case, "c10")
    assert c10 is not None
    c10.removed_at, c10.status = T(2026, 3, 10, 11, 59, tzinfo=dt.UTC), "removed"
    AuditLog(fresh, AUDIT).record("member:hotline-de", "case.status", "case", "c10", now=NOW, status="removed")
    # And c5 (2026-02-28 12:00, routed to hotline-fr) is changed behind the trail's back (a bulk load would):
    # removed 50 h 30 min after its first report, with no audit entry.
    c5 = fresh.get(Case, "c5")
    assert c5 is not None
    c5.removed_at = T(2026, 3, 2, 14, 30, tzinfo=dt.UTC)
    fresh.commit()
    # Until the job runs, the figures are those of its last run.
    assert network_status(fresh, now=NOW)["cases"]["removed"] == 6

    # The job recomputes the month of c10 only.
    assert roll_up(fresh, now=NOW).months == ["2026-03"]
    fresh.commit()
    cases = network_status(fresh, now=NOW)["cases"]
    # Removed: c1 c2 c3 c4 c6 c9 and now c10 = 7 (c5's removal is in February, which the job did not redo).
    # Judged: the 7 old cases, c6 and now c10 (removed within 72 h) = 9; within 72 h c1 c3 c6 c9 c10 = 5;
    # 5 / 9 = 55.6%.
    assert (cases["removed"], cases["judged"], cases["removed_within_3_days"]) == (7, 9, 5)
    assert cases["share_removed_within_3_days"] == 55.6
    # Whole hours to removal: 10 (c1), 12 (c6), 29 (c10: 29 h 59 min rounds down), 30 (c3), 72 (c9), 80 (c2),
    # 200 (c4): n = 7, the middle (4th) is 30.
    assert cases["median_hours_to_removal"] == 30.0
    # Hosted in DE: c1 10, c6 12, c10 29, c3 30, c9 72: the middle is 29 (the exact median would be 29.98).
    germany = network_status(fresh, now=NOW, filters=parse_filters({"country": "DE"}))["cases"]
    assert germany["median_hours_to_removal"] == 29.0
    # Routed to hotline-de: c1 10, c6 12, c10 29, c3 30, c9 72, c2 80: n = 6, (29 + 30) / 2 = 29.5; removed
    # within 72 h c1 c3 c6 c9 c10 = 5 of 6 judged = 83.3%.
    de = network_status(fresh, now=NOW)["members"]["hotline-de"]["content"]
    assert (de["median_hours_to_removal"], de["share_removed_within_3_days"]) == (29.5, 83.3)
    assert cases["by_status"] == {"police_notified": 1, "removed": 7}
    fr = network_status(fresh, now=NOW)["members"]["hotline-fr"]["content"]
    assert (fr["removed"], fr["median_hours_to_removal"]) == (1, 200.0)

    # The rebuild recomputes every month: c5 shows. hotline-fr: c4 200 h and c5 50 h (50 h 30 min rounds down)
    # -> (50 + 200) / 2 = 125; c5 was removed within 72 h: 1 of 2 = 50.0%.
    assert rebuild(fresh, now=NOW).months is None
    fresh.commit()
    fr = network_status(fresh, now=NOW)["members"]["hotline-fr"]["content"]
    assert (fr["removed"], fr["median_hours_to_removal"], fr["share_removed_within_3_days"]) == (2, 125.0, 50.0)
    assert network_status(fresh, now=NOW)["cases"]["removed"] == 8


def test_the_job_reads_without_holding_writers_up_and_a_run_overtaken_writes_nothing(fresh: Session) -> None:
    roll_up(fresh, now=NOW)
    fresh.commit()
    c10 = fresh.get(Case, "c10")
    assert c10 is not None
    c10.removed_at, c10.status = T(2026, 3, 10, 11, 59, tzinfo=dt.UTC), "removed"
    AuditLog(fresh, AUDIT).record("member:hotline-de", "case.status", "case", "c10", now=NOW, status="removed")
    fresh.commit()

    # A member's message being stored holds the write lock (on SQLite, the whole database's) meanwhile:
    # the job's reading pass neither waits for it nor keeps a transaction open after.
    writer = Session(fresh.get_bind())
    writer.add(Member(id="hotline-xx", name="hotline-xx", countries=["XX"], created_at=NOW))
    writer.flush()
    found = survey(fresh, now=NOW)
    assert not fresh.in_transaction()
    writer.rollback()
    writer.close()
    assert found.months == ["2026-03"]

    # Another run (a command beside the worker) stores its position first: this run's write is skipped,
    # and the figures are the other run's, which saw the same change.
    with Session(fresh.get_bind()) as other:
        assert roll_up(other, now=NOW).months == ["2026-03"]
        other.commit()
    assert apply(fresh, found, now=NOW).months == []
    fresh.commit()
    assert network_status(fresh, now=NOW)["cases"]["removed"] == 7
    # Nothing new since: the next run recomputes nothing and changes no figure.
    assert roll_up(fresh, now=NOW).months == []
    fresh.commit()
    cases = network_status(fresh, now=NOW)["cases"]
    assert (cases["removed"], cases["judged"], cases["removed_within_3_days"]) == (7, 9, 5)


def _stored_cells(session: Session) -> tuple[set[tuple[Any, ...]], dict[tuple[Any, ...], dict[str, int]]]:
    """Every cell row, and every histogram by its key (counts parsed: their JSON order is not a figure)."""
    cells = {tuple(row) for row in session.execute(select(StatusCell.__table__))}
    histograms = {tuple(row[:-1]): json.loads(row[-1]) for row in session.execute(select(StatusHistogram.__table__))}
    return cells, histograms


def test_the_job_writes_only_what_changed_and_matches_a_rebuild(fresh: Session) -> None:
    roll_up(fresh, now=NOW)
    fresh.commit()
    audit = AuditLog(fresh, AUDIT)
    # c8, the only case of its cell (hotline-de -> secretariat, US), is routed to hotline-fr instead: its
    # old cell must go. c4 gets a police date; a new case c11 opens in February.
    c8, c4 = fresh.get(Case, "c8"), fresh.get(Case, "c4")
    assert c8 is not None and c4 is not None
    c8.destination = "hotline-fr"
    c4.police_notified_at = T(2026, 2, 15, tzinfo=dt.UTC)
    fresh.add(
        Case(
            id="c11",
            url_fingerprint=hashlib.sha256(b"c11").hexdigest(),
            origin="hotline-fr",
            destination="hotline-nl",
            hosting_country="NL",
            legal_status="baseline",
            priority="normal",
            state="confirmed",
            confirmed_at=T(2026, 2, 20, tzinfo=dt.UTC),
            created_at=T(2026, 2, 20, tzinfo=dt.UTC),
            removed_at=T(2026, 2, 21, tzinfo=dt.UTC),
            status="removed",
        )
    )
    for case_id, action in (("c8", "case.reroute"), ("c4", "case.status"), ("c11", "case.open")):
        audit.record("secretariat", action, "case", case_id, now=NOW)
    fresh.commit()

    found = survey(fresh, now=NOW)
    assert found.months == ["2026-02", "2026-03"] and found.changes is not None
    cell_changes, _ = found.changes
    old_cell = {"level": 3, "month": "2026-03", "legal_status": "baseline", "origin": "hotline-de"}
    old_cell |= {"hosting_country": "US", "destination": "secretariat"}
    assert old_cell in cell_changes.stale
    # Only the differing rows are written: fewer than the months' rows.
    assert len(cell_changes.fresh) < len(found.cells)
    apply(fresh, found, now=NOW)
    fresh.commit()
    incremental = _stored_cells(fresh)
    assert not any(row[:6] == tuple(old_cell.values()) for row in incremental[0])

    rebuild(fresh, now=NOW)
    fresh.commit()
    assert _stored_cells(fresh) == incremental


def test_recent_cases_follow_their_changes_and_age_out(fresh: Session) -> None:
    roll_up(fresh, now=NOW)
    fresh.commit()
    recent = set(fresh.scalars(select(StatusRecent.case_id)))
    # First reported in the 72 hours before NOW (2026-03-10 12:00) and not refused.
    young = select(Case.id).where(Case.state != REJECTED, Case.confirmed_at > NOW - dt.timedelta(hours=72))
    expected = set(fresh.scalars(young))
    assert recent == expected and recent
    # A recent case refused later leaves status_recent at the next run; a day later the old ones age out.
    refused = sorted(recent)[0]
    case_row = fresh.get(Case, refused)
    assert case_row is not None
    case_row.state = REJECTED
    AuditLog(fresh, AUDIT).record("secretariat", "case.reject", "case", refused, now=NOW)
    fresh.commit()
    roll_up(fresh, now=NOW)
    fresh.commit()
    assert set(fresh.scalars(select(StatusRecent.case_id))) == recent - {refused}
    later = NOW + dt.timedelta(days=3)
    roll_up(fresh, now=later)
    fresh.commit()
    assert fresh.scalars(select(StatusRecent.case_id)).all() == []


def test_the_median_of_whole_hours() -> None:
    # 1 x 3 h, 2 x 5 h, 1 x 9 h: in order 3 5 5 9, n = 4 -> rows 2 and 3: (5 + 5) / 2 = 5.
    assert median(Counter({3: 1, 5: 2, 9: 1})) == 5.0
    # 3 4 -> (3 + 4) / 2 = 3.5; one value is its own median; nothing has none.
    assert median(Counter({4: 1, 3: 1})) == 3.5
    assert median(Counter({200: 1})) == 200.0
    assert median(Counter()) is None
