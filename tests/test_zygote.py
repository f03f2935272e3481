"""The fork server that starts test and demo networks reports each child's own exit, never another's."""

from __future__ import annotations

import time
from pathlib import Path

from demo.zygote import Zygote


def test_each_child_is_reported_by_its_own_serial_not_by_a_reused_pid(tmp_path: Path) -> None:
    zygote = Zygote()
    try:
        quick = [zygote.spawn("tests.zygote_child", ["exit", str(n)], {}, tmp_path / "log") for n in range(3)]
        for n, child in enumerate(quick):
            assert child.wait(10) == n
        sleeper = zygote.spawn("tests.zygote_child", ["sleep"], {}, tmp_path / "log")
        assert len({child.serial for child in [*quick, sleeper]}) == 4
        time.sleep(0.2)
        assert sleeper.poll() is None
        sleeper.kill()
        assert sleeper.wait(10) == -9
    finally:
        zygote.close()
