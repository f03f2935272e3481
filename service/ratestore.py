"""Where rate-limit counts live: in Redis when several processes share them, else in this process's memory.

Both come from the ``limits`` library. Its in-memory storage, though, sweeps expired counts in a timer
thread that lives 10 ms: every count taken more than 10 ms after the last one starts a new thread. On a
quiet network (one transaction every few milliseconds) that is a thread per request, which cost 56 µs of
CPU per count at 3 ms between requests and 351 µs at 15 ms (9 and 75 µs swept inline) on the machine of
issue 11, where a single-report transaction costs about 2.7 ms in all (docs/performance.md).
:class:`SweptMemoryStorage` is the same storage, swept inline instead, at most once a second, by
whichever request comes: counts expire on read as before (the sweep only frees the memory of expired
keys), and no thread is started.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from limits import storage

SWEEP_SECONDS = 1.0
"""How often expired counts and window entries are dropped from memory (at most)."""


class SweptMemoryStorage(storage.MemoryStorage):
    """``limits``' memory storage without its timer thread: expired entries are swept inline, once a second.

    The sweep also drops the moving windows left empty, which the library's keeps (one empty list per
    key ever counted: the public throttle's keys are daily pseudonyms of reporters, so a long-running
    public surface grew by every day's reporters). Moving-window counts and the sweep take one lock, so
    a window is never dropped between a count's lookup and its write.

    Relies on the storage's private hook (``__schedule_expiry``, called before every count); the tests
    check that counting starts no thread and that the memory of expired keys is freed, so a version of
    ``limits`` that changes the hook fails them rather than leaking.
    """

    def __init__(self, uri: str | None = None, **options: Any) -> None:
        super().__init__(uri, **options)
        self.timer.cancel()  # The one timer the base class starts: its sweeps run inline from here on.
        self._next_sweep = time.monotonic() + SWEEP_SECONDS
        self._windows = threading.RLock()

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        with self._windows:
            return bool(super().acquire_entry(key, limit, expiry, amount))

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - overrides the base's private hook.
        now = time.monotonic()
        if now < self._next_sweep:
            return
        with self._windows:
            if now < self._next_sweep:  # Another request swept meanwhile.
                return
            self._next_sweep = now + SWEEP_SECONDS
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]
            for key in [key for key, entries in self.events.items() if not entries]:
                del self.events[key]


def storage_for(uri: str) -> storage.Storage:
    """The ``limits`` storage for ``uri`` (``memory://``: this process's, swept inline; else the library's)."""
    if uri.split("://", 1)[0] == "memory":
        return SweptMemoryStorage(uri)
    found = storage.storage_from_string(uri)
    if not isinstance(found, storage.Storage):
        raise ValueError(f"{uri!r} names an asyncio storage; the services count synchronously")
    return found
