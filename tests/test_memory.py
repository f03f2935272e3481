"""A serving process hands the memory it freed back to the system (service.memory)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from service.memory import Trimmer, trim


def resident_anonymous_mb() -> float:
    """RssAnon of this process (the private memory a long-running service is judged by)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no RssAnon in /proc/self/status")


@pytest.mark.skipif(not trim(), reason="the C library here is not glibc")
def test_freed_blocks_in_a_threads_arena_go_back_to_the_system() -> None:
    survivors: list[bytearray] = []

    def handle_a_large_request() -> None:
        # Blocks malloc serves from this thread's arena (over pymalloc's 512 bytes, under mmap's 128 KiB),
        # about 100 MB in all; one in fifty outlives the request, so the arena cannot shrink from its top.
        blocks = [bytearray(4000) for _ in range(25_000)]
        survivors.extend(blocks[::50])

    thread = threading.Thread(target=handle_a_large_request)
    thread.start()
    thread.join()
    before = resident_anonymous_mb()
    assert trim()
    after = resident_anonymous_mb()
    assert before - after > 50, f"RssAnon {before:.1f} MB before the trim, {after:.1f} MB after"
    assert len(survivors) == 500


@pytest.mark.skipif(not trim(), reason="the C library here is not glibc")
def test_the_trimmer_trims_once_its_interval_has_passed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="service.memory")
    Trimmer(seconds=3600).tick()
    assert not caplog.records
    due = Trimmer(seconds=0.0)
    due.tick()
    assert [record.getMessage().startswith("returned freed memory") for record in caplog.records] == [True]


ARENAS_AFTER_THREADS = """
import ctypes, sys, threading
from service.memory import limit_arenas
if sys.argv[1] == "capped":
    limit_arenas()
def work():
    blocks = [bytearray(4000) for _ in range(1000)]
    done.wait()
done = threading.Event()
threads = [threading.Thread(target=work) for _ in range(8)]
for thread in threads:
    thread.start()
libc = ctypes.CDLL(None)
libc.open_memstream.restype = ctypes.c_void_p
buffer, size = ctypes.c_char_p(), ctypes.c_size_t()
stream = ctypes.c_void_p(libc.open_memstream(ctypes.byref(buffer), ctypes.byref(size)))
libc.malloc_info(0, stream)
libc.fclose(stream)
done.set()
print(ctypes.string_at(buffer, size.value).decode().count("<heap nr="))
"""


@pytest.mark.skipif(not trim(), reason="the C library here is not glibc")
def test_a_service_caps_its_malloc_arenas_unless_the_environment_does() -> None:
    def heaps(mode: str, **env: str) -> int:
        environment = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
        answer = subprocess.run(
            [sys.executable, "-c", ARENAS_AFTER_THREADS, mode],
            env={**environment, **env},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return int(answer.stdout)

    assert heaps("default") > 2  # glibc: an arena per thread, up to eight per core.
    assert heaps("capped") <= 2
    assert heaps("capped", MALLOC_ARENA_MAX="4") > 2  # The operator's setting wins (limit_arenas does nothing).
