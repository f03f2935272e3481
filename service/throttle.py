"""Rate limits for people we must not identify: the public reporting page.

A reporter's address is personal data and, for someone reporting abuse, possibly dangerous to keep. Yet
a page that anyone can post to needs a limit, or one script fills the analysts' queue. So the address
is used for one thing only, counting, and never in a form that could be turned back into it:

1. The count key is ``HMAC-SHA256(daily key, address)``, truncated to 128 bits. For IPv6 the address is
   first cut to its /64 (one household or phone usually holds a whole /64, and counting single IPv6
   addresses would limit nothing).
2. The daily key is 256 random bits made when the first request of a UTC day needs it. With memory
   storage it lives only in this process; with Redis it is stored there under an expiry of two days
   (``SET NX EX``), so that every process shares one key and nothing outlives two days. It is never
   written to a file, a database or a log. Once a day's key is gone, that day's counts cannot be linked
   to an address by anyone, including us: the IPv4 space is small enough to hash in full, so a key that
   survived would undo the hashing.
3. The counts themselves live in the same storage with the expiry of their window (``limits``).

Nothing here logs an address. If Redis cannot be reached, counting falls back to this process's memory
(and says so in the log, without an address): refusing every report because a cache is down would be
worse than counting per process for a while.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping

from limits import RateLimitItem, parse, strategies
from redis.exceptions import RedisError

from federation.ratelimit import RateLimitedError
from service.ratestore import SweptMemoryStorage, storage_for

log = logging.getLogger(__name__)

KEY_TTL_SECONDS = 2 * 86400


def address_bucket(address: str) -> str:
    """What is counted for ``address``: the address itself for IPv4, its /64 for IPv6."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "unparsable"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


class AnonymousThrottle:
    """Limits per bucket (``"report"``, ``"status"``), counted per keyed hash of the caller's address."""

    def __init__(
        self,
        storage_uri: str,
        limits: Mapping[str, str],
        *,
        namespace: str,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.namespace = namespace
        self.clock = clock
        self.limits: dict[str, list[RateLimitItem]] = {
            bucket: [parse(part) for part in text.split(";") if part.strip()] for bucket, text in limits.items()
        }
        self._redis = None
        if storage_uri.startswith(("redis://", "rediss://", "unix://")):
            import redis

            self._redis = redis.Redis.from_url(storage_uri, socket_timeout=1, socket_connect_timeout=1)
        self._storage_uri = storage_uri
        self._limiter = strategies.MovingWindowRateLimiter(storage_for(storage_uri))
        self._fallback = strategies.MovingWindowRateLimiter(SweptMemoryStorage())
        self._keys: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def _daily_key(self, day: str) -> bytes:
        with self._lock:
            key = self._keys.get(day)
            if key is not None:
                return key
            fresh = secrets.token_bytes(32)
            if self._redis is not None:
                name = f"{self.namespace}:throttle-key:{day}"
                self._redis.set(name, fresh.hex(), nx=True, ex=KEY_TTL_SECONDS)
                stored = self._redis.get(name)
                if stored:
                    fresh = bytes.fromhex(stored.decode() if isinstance(stored, bytes) else str(stored))
            # Only today's key is kept; yesterday's is dropped from memory the first time today's is made.
            self._keys = {day: fresh}
            return fresh

    def pseudonym(self, address: str) -> str:
        """The count key for ``address`` today: not reversible once the day's key is gone."""
        day = self.clock().astimezone(dt.UTC).strftime("%Y-%m-%d")
        try:
            key = self._daily_key(day)
        except (RedisError, OSError):  # Redis unreachable: a key of this process for now.
            log.warning("throttle: the shared key store cannot be reached; using a key of this process")
            with self._lock:
                key = self._keys.setdefault(f"local-{day}", secrets.token_bytes(32))
        digest = hmac.new(key, address_bucket(address).encode(), hashlib.sha256).hexdigest()
        return f"{day}:{digest[:32]}"

    def hit(self, bucket: str, address: str) -> None:
        """Count one request from ``address`` in ``bucket``.

        Raises:
            RateLimitedError: over any of the bucket's limits, with the seconds until it may try again.
        """
        items = self.limits.get(bucket)
        if not items:
            return
        who = self.pseudonym(address)
        for item in items:
            limiter = self._limiter
            try:
                allowed = limiter.hit(item, self.namespace, bucket, who)
            except (RedisError, OSError):  # See the module essay: count in memory while the store is down.
                log.warning("throttle: the shared counter store cannot be reached; counting in this process")
                limiter = self._fallback
                allowed = limiter.hit(item, self.namespace, bucket, who)
            if not allowed:
                reset_at, _ = limiter.get_window_stats(item, self.namespace, bucket, who)
                retry_after = max(1, math.ceil(reset_at - time.time()))
                raise RateLimitedError(
                    f"too many requests from this network; try again in {retry_after} s", retry_after=retry_after
                )
