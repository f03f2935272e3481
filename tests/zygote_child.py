"""A stand-in surface for tests of the fork server: ``main(["exit", "3"])`` exits 3, ``main(["sleep"])`` waits."""

from __future__ import annotations

import sys
import time


def main(argv: list[str], standalone_mode: bool = True) -> None:
    if argv[0] == "exit":
        sys.exit(int(argv[1]))
    time.sleep(60)
