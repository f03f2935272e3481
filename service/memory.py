"""Handing freed memory back to the system, so a long-running process's size follows what it uses.

glibc's allocator keeps what a program frees: each thread that allocates gets an arena of its own (up to
eight per core), and a freed block in the middle of an arena stays in the process's resident memory until
something is allocated there again. A threaded server that now and then handles a large transaction (a
backlog of 100 documents after a member's outage, say) keeps the pages that request touched in whichever
thread's arena served it; the soak (``bench/soak.py``) saw the exchange's network process grow 12 MB in
five minutes while its work stayed the same, and stay flat with fewer arenas (``MALLOC_ARENA_MAX=2``).

``malloc_trim(0)`` walks every arena and returns the whole free pages inside them to the system
(``madvise``); it costs a few milliseconds for a heap of a hundred megabytes, so a serving process calls it
once a minute (:class:`Trimmer`). It cannot return pages that still hold a live block, so memory
fragmented across many arenas stays (docs/operations.md: ``MALLOC_ARENA_MAX``). Where the C library is
not glibc (musl, macOS), there is nothing to call and nothing happens.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import time
from typing import Any

log = logging.getLogger(__name__)

TRIM_SECONDS = 60.0
"""How often a serving process hands freed memory back."""


@functools.cache
def _malloc_trim() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        function = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # Not glibc.
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return function


def trim() -> bool:
    """Return the free pages of every malloc arena to the system; False where the C library cannot."""
    function = _malloc_trim()
    if function is None:
        return False
    function(0)
    return True


class Trimmer:
    """Calls :func:`trim` at most every ``seconds`` from a loop that runs anyway (a server's main loop)."""

    def __init__(self, seconds: float = TRIM_SECONDS) -> None:
        self.seconds = seconds
        self._next = time.monotonic() + seconds

    def tick(self) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.seconds
        started = time.perf_counter()
        if trim():
            log.debug("returned freed memory to the system in %.1f ms", (time.perf_counter() - started) * 1000)
