"""`make demo` runs its walk-through from nothing and stops cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_walks_a_report_through_a_fresh_network(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demo", "--once", "--root", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for step in (
        "1. hotline-nl confirmed",
        "2. hotline-de received",
        "3. hotline-nl got",
        "4. hotline-de sent",
        "5. hotline-fr reported the same URL",
        "6. hotline-nl: 3 reports",
        "7. hotline-nl's analysts",
        "8. hotline-de sent a notice to Example Hosting GmbH",
        "9. the demo's hosting provider took it down",
    ):
        assert step in result.stdout
    [notice] = sorted((tmp_path / "demo" / "mail").glob("*.eml"))
    assert b"hxxp://images[.]example/album/77/photo-3.jpg" in notice.read_bytes()
    network = json.loads((tmp_path / "demo" / "network.json").read_text())
    assert {m["id"] for m in network["members"]} == {"hotline-nl", "hotline-de", "hotline-fr", "secretariat"}
    for member in network["members"]:
        assert Path(member["cert"]).is_file() and Path(member["key"]).is_file()
        assert member["url"].startswith("https://127.0.0.1:")
