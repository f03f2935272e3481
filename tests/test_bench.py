"""The bench scripts refuse sizes they cannot measure with a usage line, before starting anything."""

from __future__ import annotations

import pytest

from bench import received, throughput


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--sequential", "0"], "argument --sequential: must be at least 1, not 0"),
        (["--single", "-5"], "argument --single: must be at least 0, not -5"),
        (["--batch50", "many"], "argument --batch50: 'many' is not a whole number"),
    ],
)
def test_a_size_it_cannot_measure_is_a_usage_error(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        throughput.main(arguments)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("given", ["1000,many", "50", "-1000", ""])
def test_the_received_bench_refuses_a_store_it_cannot_build(given: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        received.main(["--sizes", given])
    assert exited.value.code == 2
    assert "argument --sizes" in capsys.readouterr().err
