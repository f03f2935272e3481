"""``make bench-received``: a node's work on the cases it receives from abroad, and on the reports it sends,
as they accumulate.

A node keeps every case it has received and every report it has sent, so what its analysts and its worker
ask of them must cost the same at a thousand as at a million. For each size (``--sizes``) the bench builds a
migrated node database by bulk SQL (and says how long that took): received cases spread over 90 days, 2 %
urgent; 70 % removed, 10 % found not illegal here, 2 % moved and the rest open; 2 % marked "do not fetch";
every case's removal watch next due within the coming day, as after its last check. Then, in process on
SQLite, against the floor measured in the same run (20 primary-key probes of ``inbound_cases`` in one
statement), it times:

- the worker's removal-check query (``node.removal.tasks.due_cases``) with nothing due (the usual minute)
  and with 20 cases due (a full batch);
- the received list's first page, all cases and open cases (``node.received.views.received_list``,
  counted and fetched as the page does: urgent first, then the oldest);
- the open and urgent-open counts of the home page;
- as many reports sent (0.5 % awaiting a receipt, 0.5 % refused): the list of reports sent's first page
  (``node.reports.views.sent_list``, newest first) and the home page's counts of the waiting ones.

The stores are kept in ``var/bench/received-<n>.db`` (``--rebuild``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import random
import shutil
import sqlite3
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # Runnable as ``python bench/received.py`` from anywhere.
    sys.path.insert(0, str(REPO))

from bench.measure import machine, percentile, say, show_table  # noqa: E402
from certs.devnet import DevMember  # noqa: E402
from demo.network import lay_out, prepare_database, service_app  # noqa: E402

NODE = DevMember("hotline-de", "Hotline Germany (bench)", ("DE",))
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
DUE = 20
# Per 200 reports sent: one awaiting a receipt, one refused, 20 joined a case, the rest received.
SENT_STATES = ["sent", "refused"] + ["duplicate"] * 20 + ["received"] * 178
# Per 50 cases: 35 removed, 5 not illegal here, 1 moved, 9 open.
STATUSES = (
    ["removed"] * 35 + ["not_illegal_here"] * 5 + ["moved"] + ["ntd_sent"] * 5 + ["received"] * 2 + ["reappeared"] * 2
)


def _when(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def build_store(path: Path, count: int) -> float:
    """A migrated node database with ``count`` received cases and their watches, none due."""
    layout = lay_out(path.parent / "received-layout", members=(NODE,))
    spec = layout.spec(NODE.member_id)
    spec.use_database(f"sqlite:///{path}")
    path.unlink(missing_ok=True)
    prepare_database(spec)
    started = time.perf_counter()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    # A store made by an older schema keeps a time on every watch (its column may not be NULL).
    nullable = not next(
        row[3] for row in connection.execute("PRAGMA table_info(removal_watches)") if row[1] == "next_check_at"
    )
    rng = random.Random(11)
    chunk = 100_000
    for start in range(0, count, chunk):
        cases, watches = [], []
        for n in range(start, min(count, start + chunk)):
            case_id = f"{n:08d}-0000-7000-8000-{rng.getrandbits(48):012x}"
            received = NOW - dt.timedelta(seconds=rng.uniform(3600, 90 * 86400))
            status = STATUSES[n % 50]
            url = f"http://host{n % 997}.example/gallery/{n}"
            cases.append(
                (
                    case_id,
                    "hotline-nl",
                    url,
                    hashlib.sha256(url.encode()).hexdigest(),
                    "urgent" if n % 47 == 0 else "normal",
                    _when(received),
                    status,
                )
            )
            never = status in ("not_illegal_here", "moved")
            due = NOW + dt.timedelta(seconds=rng.uniform(60, 86400))
            watches.append((case_id, int(n % 53 == 7), None if never and nullable else _when(due)))
        connection.executemany(
            "INSERT INTO inbound_cases (id, origin, url, url_fingerprint, hosting_country, legal_status, priority,"
            " content_hashes, details, confirmed_at, received_at, status, same_material)"
            " VALUES (?, ?, ?, ?, 'DE', 'baseline', ?, '[]', '{}', ?6, ?6, ?7, '[]')",
            cases,
        )
        connection.executemany(
            "INSERT INTO reports (id, url, canonical_url, url_fingerprint, hosting_country, legal_status, priority,"
            " content_hashes, details, confirmed_at, state) VALUES (?, ?2, ?2, ?3, 'FR', 'baseline', 'normal', '[]',"
            " '{}', ?4, ?5)",
            [
                (f"{n:08d}-1111-7000-8000-000000000000", f"http://sent{n % 991}.example/{n}", fingerprint, at, state)
                for n, (_, _, _, fingerprint, _, at, _) in enumerate(cases, start)
                for state in [SENT_STATES[n % 200]]
            ],
        )
        connection.executemany(
            "INSERT INTO removal_watches (case_kind, case_id, do_not_fetch, next_check_at, last_outcome)"
            " VALUES ('received', ?, ?, ?, 'up')",
            watches,
        )
        connection.commit()
    connection.execute("ANALYZE")
    connection.commit()
    connection.close()
    return time.perf_counter() - started


def make_due(path: Path, how_many: int) -> list[str]:
    """``how_many`` checked cases made due (their next check a minute ago); returns their ids."""
    connection = sqlite3.connect(path)
    ids = [
        row[0]
        for row in connection.execute(
            "SELECT w.case_id FROM removal_watches w JOIN inbound_cases c ON c.id = w.case_id"
            " WHERE c.status = 'ntd_sent' AND w.do_not_fetch = 0 ORDER BY w.case_id DESC LIMIT ?",
            (how_many,),
        )
    ]
    connection.executemany(
        "UPDATE removal_watches SET next_check_at = ? WHERE case_kind = 'received' AND case_id = ?",
        [(_when(NOW - dt.timedelta(minutes=1)), case_id) for case_id in ids],
    )
    connection.commit()
    connection.close()
    return ids


def measure(store: Path, repeats: int) -> list[tuple[str, list[float]]]:
    from sqlalchemy import func, select

    from console import paginate
    from node.received.models import InboundCase, is_open
    from node.received.views import received_list
    from node.removal.tasks import due_cases
    from node.reports.models import Report, is_waiting
    from node.reports.views import sent_list

    layout = lay_out(REPO / "var" / "bench" / "received-app", members=(NODE,))
    app = service_app(layout.spec(NODE.member_id), SQLALCHEMY_DATABASE_URI=f"sqlite:///{store}")
    rows = []
    with app.app_context():
        session = app.extensions["service_db"].session
        ids = [row[0] for row in sqlite3.connect(store).execute("SELECT id FROM inbound_cases LIMIT 2000")]
        rng = random.Random(3)

        def timed(function: object) -> list[float]:
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                function()  # type: ignore[operator]
                times.append((time.perf_counter() - started) * 1000)
                session.rollback()
            return times

        filters = {"open": "", "status": "", "priority": "", "origin": "", "q": ""}
        count_open = select(func.count()).select_from(InboundCase).where(is_open())
        floor = timed(
            lambda: list(session.scalars(select(InboundCase).where(InboundCase.id.in_(rng.sample(ids, DUE)))))
        )
        rows.append((f"floor: {DUE} key probes", floor))
        nothing = timed(lambda: due_cases(session, NOW))
        assert due_cases(session, NOW) == [], "the store should have nothing due"
        rows.append(("removal checks: none due", nothing))
        rows.append(
            ("received list, page 1", timed(lambda: paginate(session, received_list(filters), number=1, size=50)))
        )
        rows.append(
            (
                "received list, open, page 1",
                timed(lambda: paginate(session, received_list(filters | {"open": "1"}), number=1, size=50)),
            )
        )
        rows.append(
            (
                "home: open and urgent-open counts",
                timed(
                    lambda: (
                        session.scalar(count_open),
                        session.scalar(count_open.where(InboundCase.priority == "urgent")),
                    )
                ),
            )
        )
        sent_filters = {"state": "", "country": "", "priority": "", "q": ""}
        rows.append(("sent list, page 1", timed(lambda: paginate(session, sent_list(sent_filters), number=1, size=50))))
        waiting = select(Report.state, func.count()).where(is_waiting()).group_by(Report.state)
        rows.append(("home: awaiting-receipt and refused counts", timed(lambda: session.execute(waiting).all())))
        session.remove()
        app.extensions["service_db"].engine.dispose()
        wanted = set(make_due(store, DUE))
        with app.app_context():
            session = app.extensions["service_db"].session
            found = {case.id for case in due_cases(session, NOW)}
            assert found == wanted, f"due_cases found {len(found & wanted)} of the {DUE} due cases"
            rows.append((f"removal checks: {DUE} due", timed(lambda: due_cases(session, NOW))))
            session.remove()
            app.extensions["service_db"].engine.dispose()
    return rows


def sizes(value: str) -> list[int]:
    """``--sizes``: whole numbers of at least 100 (enough cases to make 20 due), comma-separated."""
    found = []
    for part in value.split(","):
        if not part.strip().isdigit() or int(part) < 100:
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not a whole number of at least 100")
        found.append(int(part))
    return found


def repeats(value: str) -> int:
    """``--repeats``: a whole number of at least 1."""
    if not value.strip().isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value.strip()!r} is not a whole number of at least 1")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/received.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=sizes,
        default="1000,10000,100000,1000000",
        help="received cases, comma-separated (default 1,000 to 1 million)",
    )
    parser.add_argument("--repeats", type=repeats, default=200, help="times each query is run")
    parser.add_argument("--rebuild", action="store_true", help="build the stores again")
    args = parser.parse_args(argv)
    say(json.dumps(machine()))
    table = []
    for size in args.sizes:
        store = REPO / "var" / "bench" / f"received-{size}.db"
        store.parent.mkdir(parents=True, exist_ok=True)
        if args.rebuild or not store.exists():
            building = store.with_suffix(".building")
            took = build_store(building, size)
            building.replace(store)  # Only a finished store is ever reused.
            say(f"  built {size:,} received cases, their watches and {size:,} reports sent by bulk SQL in {took:.1f} s")
        scratch = store.with_suffix(".run")  # Each run makes cases due in a copy, never in the kept store.
        shutil.copyfile(store, scratch)
        try:
            for label, times in measure(scratch, args.repeats):
                table.append((f"{size:,}", label, f"{statistics.median(times):.3f}", f"{percentile(times, 0.95):.3f}"))
        finally:
            scratch.unlink(missing_ok=True)
    say()
    show_table(["cases and reports", "what", "median ms", "p95 ms"], table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
