"""SQLite as the services use it: writers queue without losing one another, readers don't queue, and the
worker, not a request's commit, copies the write-ahead log into the database."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session

from federation.messages import REPORT
from service.database import SQLITE_AUTOCHECKPOINT_PAGES, checkpoint, configure_engine, reading, writing
from tests.conftest import count_rows, make_network
from tests.forgery import peer_as, report_claims

TABLES = ("cases", "case_reports", "inbound_documents", "seen_transactions", "outbox")


def _engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}")
    configure_engine(engine)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, value INTEGER)"))
        connection.execute(text("INSERT OR IGNORE INTO counter VALUES (1, 0)"))
    return engine


def _bump_from_threads(engine: Engine, *, threads: int, times: int, turn: bool = False) -> None:
    """Each thread reads the counter and writes it back plus one, ``times`` times; with ``turn``, inside
    the process's write turn and holding it a millisecond (without the turn, the others would poll)."""
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(times):
                with writing(engine) if turn else contextlib.nullcontext(), Session(engine) as session:
                    # Read, then write: only safe because the transaction took the write lock at BEGIN.
                    value = session.execute(text("SELECT value FROM counter WHERE id = 1")).scalar_one()
                    if turn:
                        time.sleep(0.001)
                    session.execute(text("UPDATE counter SET value = :v WHERE id = 1"), {"v": value + 1})
                    session.commit()
        except BaseException as exc:  # Reported by the assertion below.
            errors.append(exc)

    started = [threading.Thread(target=bump) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    assert errors == []


def _counter(engine: Engine) -> int:
    with engine.connect() as connection:
        value: int = connection.execute(text("SELECT value FROM counter")).scalar_one()
        return value


def test_writers_from_many_threads_each_get_the_lock_and_none_is_lost(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "db.sqlite")
    _bump_from_threads(engine, threads=6, times=50)
    assert _counter(engine) == 300


def test_a_writer_waits_for_the_lock_and_gets_it_once_released(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "db.sqlite")
    holder = Session(engine)
    holder.execute(text("UPDATE counter SET value = 7 WHERE id = 1"))  # Holds the write lock.
    done = threading.Event()
    seen: list[int] = []

    def write() -> None:
        with Session(engine) as session:
            seen.append(session.execute(text("SELECT value FROM counter")).scalar_one())
            session.execute(text("UPDATE counter SET value = value + 1"))
            session.commit()
        done.set()

    waiting = threading.Thread(target=write)
    waiting.start()
    assert not done.wait(0.3), "the second writer must wait while the first holds the lock"
    holder.commit()
    holder.close()
    waiting.join(timeout=10)
    assert done.is_set()
    assert seen == [7]  # It began after the first writer's commit: it saw its write.
    with engine.connect() as connection:
        assert connection.execute(text("SELECT value FROM counter")).scalar_one() == 8


def test_reading_neither_waits_for_a_writer_nor_keeps_its_transaction(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "db.sqlite")
    holder = Session(engine)
    holder.execute(text("UPDATE counter SET value = 5 WHERE id = 1"))  # Holds the write lock, uncommitted.
    answer: list[int] = []

    def read() -> None:
        with Session(engine) as session:
            with reading(session):
                answer.append(session.execute(text("SELECT value FROM counter")).scalar_one())
            assert not session.in_transaction()
            # Its next transaction is a writer's again (BEGIN IMMEDIATE): it waits for the holder.
            session.execute(text("UPDATE counter SET value = value + 10"))
            session.commit()

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(timeout=0.5)  # Had the read waited for the lock, it would still be waiting.
    assert answer == [0], "the read sees the last committed value, without waiting"
    assert reader.is_alive(), "the write after the read block waits for the lock"
    holder.commit()
    holder.close()
    reader.join(timeout=10)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT value FROM counter")).scalar_one() == 15


def test_reading_inside_a_transaction_changes_nothing(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "db.sqlite")
    with Session(engine) as session:
        session.execute(text("UPDATE counter SET value = 3 WHERE id = 1"))
        with reading(session):
            assert session.execute(text("SELECT value FROM counter")).scalar_one() == 3
        assert session.in_transaction(), "the block must not end a transaction it did not begin"
        session.commit()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT value FROM counter")).scalar_one() == 3


def test_a_transaction_that_cannot_get_the_lock_in_time_is_refused_for_a_retry(tmp_path: Path) -> None:
    """The exchange answers 503 (the sender retries) when SQLite's write lock does not come within
    SQLITE_BUSY_TIMEOUT_SECONDS, stores nothing, and takes the retry once the lock is free."""
    network = make_network(tmp_path, "sqlite", None, SQLITE_BUSY_TIMEOUT_SECONDS=0.5)
    network.start("exchange")
    try:
        database = network.layout.exchange.database
        forger = peer_as(network.layout, "hotline-nl")
        document = forger.signer.sign_compact(REPORT, report_claims(forger.signer))
        before = count_rows(database, *TABLES)
        holder = sqlite3.connect(database.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # Another writer holds the lock for longer than the wait.
        try:
            started = time.monotonic()
            refused = forger.post(forger.transaction([document]))
            waited = time.monotonic() - started
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "temporarily_unavailable"
        assert "busy" in refused.json()["message"]
        assert 0.5 <= waited < 10
        assert count_rows(database, *TABLES) == before
        # The sender's retry (a new transaction carrying the same document) is applied.
        assert forger.outcomes(forger.post(forger.transaction([document])))[0]["outcome"] == "accepted"
    finally:
        network.stop()


def test_commits_leave_the_log_to_the_worker_which_copies_it_without_blocking_writers(tmp_path: Path) -> None:
    """SQLite's default copies the log inside the commit that passes 1,000 pages (a request paid 3-5 ms for
    it); the services' connections leave it to the worker's passive checkpoint, while a writer writes."""
    engine = _engine(tmp_path / "db.sqlite")
    with engine.begin() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == SQLITE_AUTOCHECKPOINT_PAGES
        connection.execute(text("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)"))
    page = 4096
    for _ in range(300):  # About five pages each: 1,500 pages in all, past SQLite's default of 1,000.
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO blobs (data) VALUES (:data)"), {"data": os.urandom(5 * page)})
    log = tmp_path / "db.sqlite-wal"
    assert log.stat().st_size > 1_400 * page  # Never copied and restarted by a commit.
    writer = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # A writer mid-transaction does not stop the copy.
    try:
        assert checkpoint(engine, truncate=False) is True
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    with sqlite3.connect(tmp_path / "db.sqlite") as reader:
        busy, in_log, copied = reader.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert (busy, copied) == (0, in_log) and in_log >= 1_400
        assert reader.execute("SELECT count(*), sum(length(data)) FROM blobs").fetchone() == (300, 300 * 5 * page)


def test_threads_of_one_process_take_turns_to_write_without_polling_sqlite(tmp_path: Path) -> None:
    """Inside ``writing``, each transaction gets SQLite's lock at its first BEGIN: the threads queued on the
    process's own lock instead of asking SQLite again and again. Every engine of one file shares it."""
    engine = _engine(tmp_path / "db.sqlite")
    begins: list[str] = []
    event.listen(
        engine,
        "connect",
        lambda connection, _record: connection.set_trace_callback(
            lambda sql: begins.append(sql) if sql.startswith("BEGIN") else None
        ),
    )
    engine.dispose()  # New connections, traced.
    other = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert writing(engine) is writing(other)
    assert writing(create_engine("postgresql+psycopg://127.0.0.1/none")).__enter__() is None  # Holds nothing.
    _bump_from_threads(engine, threads=6, times=20, turn=True)
    assert begins == ["BEGIN IMMEDIATE"] * 120
    assert _counter(engine) == 120
