"""Per-peer request limits, so that one member cannot take a service's capacity from the others.

Each request is counted against a bucket (the endpoint's blueprint, or a default) and a key (who is
asking: a member id on the network surface). Counting uses the ``limits`` library with a fixed window,
in this process's memory (``service.ratestore``), or in Redis when several processes must share the counts
(``RATE_LIMIT_STORAGE_URI = "redis://127.0.0.1:6379"``). Over the limit, the request is refused with
``429 rate_limited`` and a ``Retry-After`` header saying when the window reopens.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

from limits import RateLimitItem, parse, strategies

from federation.errors import ProtocolError
from service.ratestore import storage_for


class RateLimitedError(ProtocolError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimits:
    """Limits by bucket, counted per key; ``check`` raises :class:`RateLimitedError` over the limit."""

    def __init__(self, storage_uri: str, limits: Mapping[str, str], default: str) -> None:
        self.limiter = strategies.FixedWindowRateLimiter(storage_for(storage_uri))
        self.limits: dict[str, RateLimitItem] = {bucket: parse(text) for bucket, text in limits.items()}
        self.default = parse(default)

    def check(self, bucket: str, key: str) -> None:
        item = self.limits.get(bucket, self.default)
        if self.limiter.hit(item, bucket, key):
            return
        reset_at, _ = self.limiter.get_window_stats(item, bucket, key)
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise RateLimitedError(
            f"more than {item.amount} requests per {item.get_expiry()} s from {key} here; retry in {retry_after} s",
            retry_after=retry_after,
        )
