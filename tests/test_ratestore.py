"""Rate-limit counts in a process's memory: the limits hold, no thread is started per count, and the memory
of expired counts is freed."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from limits import parse, storage, strategies

from federation.ratelimit import RateLimitedError, RateLimits
from service import ratestore


def _timer_starts(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    started: list[Any] = []
    real = threading.Timer.start

    def start(timer: threading.Timer) -> None:
        started.append(timer)
        real(timer)

    monkeypatch.setattr(threading.Timer, "start", start)
    return started


def test_counting_in_memory_starts_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    item = parse("1000/minute")
    library = strategies.FixedWindowRateLimiter(storage.MemoryStorage())
    ours = strategies.FixedWindowRateLimiter(ratestore.storage_for("memory://"))
    started = _timer_starts(monkeypatch)
    for limiter in (library, ours):
        started.clear()
        for _ in range(4):
            assert limiter.hit(item, "transactions", "hotline-nl")
            time.sleep(0.03)  # Longer than the library's timer lives: its next count starts another.
        counted = len(started)
        if limiter is library:
            assert counted >= 3  # What the swept storage avoids (the library's own storage, unchanged).
        else:
            assert counted == 0


def test_the_limits_hold_and_expired_counts_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratestore, "SWEEP_SECONDS", 0.05)
    limits = RateLimits("memory://", {"transactions": "2/second"}, default="10/second")
    limits.check("transactions", "hotline-nl")
    limits.check("transactions", "hotline-nl")
    with pytest.raises(RateLimitedError) as refused:
        limits.check("transactions", "hotline-nl")
    assert refused.value.retry_after == 1
    for member in ("hotline-de", "hotline-fr", "hotline-be"):
        limits.check("mailbox", member)
    counts = limits.limiter.storage
    assert isinstance(counts, ratestore.SweptMemoryStorage) and len(counts.storage) == 4
    time.sleep(1.1)  # Every window above has expired; the next count sweeps them from memory.
    limits.check("transactions", "hotline-nl")
    assert list(counts.storage.values()) == [1]

    moving = strategies.MovingWindowRateLimiter(ratestore.storage_for("memory://"))
    for n in range(20):
        assert moving.hit(parse("1/second"), "report", f"reporter-{n}")
    assert not moving.hit(parse("1/second"), "report", "reporter-0")
    time.sleep(1.1)
    assert moving.hit(parse("1/second"), "report", "reporter-0")
    assert sum(len(entries) for entries in moving.storage.events.values()) == 1
    assert len(moving.storage.events) == 1  # The windows left empty are gone too, not kept per key.


def test_other_storages_come_from_the_library() -> None:
    assert type(ratestore.storage_for("redis://127.0.0.1:6379")).__name__ == "RedisStorage"
    with pytest.raises(ValueError, match="asyncio"):
        ratestore.storage_for("async+memory://")
