"""Handing freed memory back to the system, so a long-running process's size follows what it uses.

glibc's allocator keeps what a program frees: each thread that allocates gets an arena of its own (up to
eight per core), and a freed block in the middle of an arena stays in the process's resident memory until
something is allocated there again. A threaded server that now and then handles a large transaction (a
backlog of 100 documents after a member's outage, say) keeps the pages that request touched in whichever
thread's arena served it; the soak (``bench/soak.py``) saw the exchange's network process grow 12 MB in
five minutes while its work stayed the same, and stay flat with fewer arenas (``MALLOC_ARENA_MAX=2``).

So a service caps its arenas at two (:func:`limit_arenas`, as ``MALLOC_ARENA_MAX=2`` would; an operator's
own ``MALLOC_ARENA_MAX`` wins): in the soak every process then started about 30 MB smaller, and the
exchange's network process grew 4.5–10.4 MB in ten minutes (three runs) against 8.1–17.1 MB without.
And ``malloc_trim(0)`` walks every arena and returns the whole free pages inside them to the system
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
import os
import time
from typing import Any

log = logging.getLogger(__name__)

TRIM_SECONDS = 60.0
"""How often a serving process hands freed memory back."""


ARENAS = 2
"""glibc's malloc arenas per process (its default is eight per core)."""
_M_ARENA_MAX = -8  # glibc's malloc.h


_SIGNATURES = {
    "malloc_trim": ([ctypes.c_size_t], ctypes.c_int),
    "mallopt": ([ctypes.c_int, ctypes.c_int], ctypes.c_int),
}


@functools.cache
def _glibc(name: str) -> Any:
    """glibc's function ``name`` with its C signature set (once), or None where the C library has none."""
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    try:
        function = getattr(ctypes.CDLL(library), name)
    except (OSError, AttributeError):  # Not glibc.
        return None
    function.argtypes, function.restype = _SIGNATURES[name]
    return function


def limit_arenas(count: int = ARENAS) -> bool:
    """Cap the malloc arenas, as ``MALLOC_ARENA_MAX`` would, unless the environment sets that itself.

    Must run before the process starts its threads (glibc fixes the limit when it first adds an arena):
    a service's command line calls it first. Returns False where nothing was changed.
    """
    mallopt = _glibc("mallopt")
    if mallopt is None or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    return bool(mallopt(_M_ARENA_MAX, count))


def trim() -> bool:
    """Return the free pages of every malloc arena to the system; False where the C library cannot."""
    function = _glibc("malloc_trim")
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
