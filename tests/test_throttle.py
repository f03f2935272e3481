"""The public page's limits count a keyed hash of the address, never the address, in memory or in Redis."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import redis

from federation.ratelimit import RateLimitedError
from service.throttle import AnonymousThrottle, address_bucket

REDIS = "redis://127.0.0.1:6379"


def test_ipv6_addresses_count_by_their_64_and_mapped_ipv4_as_ipv4() -> None:
    assert address_bucket("2001:db8:1:2:aaaa::1") == address_bucket("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert address_bucket("2001:db8:1:3::1") != address_bucket("2001:db8:1:2::1")
    assert address_bucket("::ffff:127.0.0.9") == "127.0.0.9"
    assert address_bucket("not an address") == "unparsable"


def test_the_pseudonym_changes_every_day_and_is_not_the_address() -> None:
    today = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
    clock = [today]
    throttle = AnonymousThrottle("memory://", {"report": "2/minute"}, namespace="t", clock=lambda: clock[0])
    first = throttle.pseudonym("127.0.0.5")
    assert first == throttle.pseudonym("127.0.0.5")
    assert "127.0.0.5" not in first and first != throttle.pseudonym("127.0.0.6")
    clock[0] = today + dt.timedelta(days=1)
    assert throttle.pseudonym("127.0.0.5") != first
    assert len(throttle._keys) == 1  # Yesterday's key is gone from memory.


def test_over_the_limit_is_refused_with_a_retry_time() -> None:
    throttle = AnonymousThrottle("memory://", {"report": "2/minute"}, namespace="t")
    throttle.hit("report", "127.0.0.5")
    throttle.hit("report", "127.0.0.5")
    with pytest.raises(RateLimitedError) as refused:
        throttle.hit("report", "127.0.0.5")
    assert 1 <= (refused.value.retry_after or 0) <= 60
    throttle.hit("report", "127.0.0.6")  # Another address is counted on its own.
    throttle.hit("status", "127.0.0.5")  # A bucket without limits is not counted.


def test_processes_sharing_redis_share_the_key_and_the_counts_and_nothing_names_the_address() -> None:
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    one = AnonymousThrottle(REDIS, {"report": "3/minute"}, namespace=namespace)
    two = AnonymousThrottle(REDIS, {"report": "3/minute"}, namespace=namespace)
    assert one.pseudonym("127.0.0.7") == two.pseudonym("127.0.0.7")
    one.hit("report", "127.0.0.7")
    two.hit("report", "127.0.0.7")
    one.hit("report", "127.0.0.7")
    with pytest.raises(RateLimitedError):
        two.hit("report", "127.0.0.7")
    client = redis.Redis.from_url(REDIS)
    try:
        keys = [key.decode() for key in client.scan_iter(match=f"*{namespace}*")]
        assert keys, "the counts and the key live in Redis"
        assert not any("127.0.0" in key for key in keys)
        key_name = next(key for key in keys if "throttle-key" in key)
        assert 0 < client.ttl(key_name) <= 2 * 86400  # The day's key expires by itself.
        for key in keys:
            value = client.dump(key) or b""
            assert b"127.0.0.7" not in value
    finally:
        for key in client.scan_iter(match=f"*{namespace}*"):
            client.delete(key)
        client.close()


def test_when_redis_is_down_counting_goes_on_in_memory() -> None:
    throttle = AnonymousThrottle("redis://127.0.0.1:1", {"report": "1/minute"}, namespace="down")
    throttle.hit("report", "127.0.0.8")
    with pytest.raises(RateLimitedError):
        throttle.hit("report", "127.0.0.8")
