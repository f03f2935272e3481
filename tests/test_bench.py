"""The bench scripts refuse sizes they cannot measure with a usage line, before starting anything."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bench import received, soak, throughput


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--sequential", "0"], "argument --sequential: must be at least 1, not 0"),
        (["--single", "-5"], "argument --single: must be at least 0, not -5"),
        (["--batch50", "many"], "argument --batch50: 'many' is not a whole number"),
        (["--budget-transactions", "251"], "argument --budget-transactions: must be at most 250, not 251"),
    ],
)
def test_a_size_it_cannot_measure_is_a_usage_error(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        throughput.main(arguments)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--sizes", "1000,many"], "argument --sizes: 'many' is not a whole number of at least 100"),
        (["--sizes", "50"], "argument --sizes: '50' is not a whole number of at least 100"),
        (["--sizes", ""], "argument --sizes: '' is not a whole number of at least 100"),
        (["--repeats", "0"], "argument --repeats: '0' is not a whole number of at least 1"),
    ],
)
def test_the_received_bench_refuses_what_it_cannot_measure(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        received.main(arguments)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_sqlites_own_work_is_counted_for_every_statement_fetch_and_commit(tmp_path: Path) -> None:
    """The single-report budget's SQLite figure: the timed connection sees what SQLAlchemy's driver calls do."""
    connection = sqlite3.connect(tmp_path / "timed.db", factory=throughput._TimedSQLite)
    assert isinstance(connection.cursor(), throughput._TimedCursor)
    connection.execute("CREATE TABLE rows (n INTEGER)")
    cursor = connection.cursor()
    cursor.executemany("INSERT INTO rows VALUES (?)", [(n,) for n in range(20_000)])
    after_writes = connection.spent_ns
    connection.commit()
    after_commit = connection.spent_ns
    assert cursor.execute("SELECT sum(n) FROM rows").fetchone() == (sum(range(20_000)),)
    assert 0 < after_writes < after_commit <= connection.spent_ns
    connection.close()


def test_a_soak_whose_backlog_never_drains_is_not_stable() -> None:
    """Two quiet windows before the second outage look alike, but the network never caught up after it."""
    drained = soak.Kill(at=90, member_id="hotline-de", surfaces=(), label="de", restarted_at=100, drained_at=140)
    stuck = soak.Kill(at=240, member_id="hotline-nl", surfaces=("worker",), label="nl worker", restarted_at=250)
    medians, p99s = [221.0, 232.0, 240.0], [424.0, 446.0, 458.0]
    assert soak.latency_stable(medians, p99s, [drained])
    assert not soak.latency_stable(medians, p99s, [drained, stuck])
    assert not soak.latency_stable([221.0, 500.0], p99s, [drained])  # Medians more than 2x apart.
    assert not soak.latency_stable(medians, [424.0, 1342.0], [drained])  # A p99 more than 3x another.
    assert not soak.latency_stable([], [], [drained])
