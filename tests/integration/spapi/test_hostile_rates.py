"""No number from Amazon, and nothing a bucket's hash holds, leaves a bucket the fleet cannot use.

The real Lua script runs in a real Redis. After each hostile rate (told through the limiter, told to the
script directly, or left in the hash by an older version), the next call of that seller and operation
gets its token, and the bucket's hash holds a plausible rate and expires.
"""

from __future__ import annotations

import math

import pytest
import redis

from spreports.spapi.operations import GET_REPORT, Operation
from spreports.spapi.ratelimit import _SCRIPT, RateLimiter, plausible_rates

HOSTILE = ["1e-300", "0", "-1", "nan", "inf", "-inf", "1e308", "0.0001", "5e-324", "-0"]
THIRTY_DAYS = 30 * 86400


@pytest.fixture
def limiter(redis_client: redis.Redis) -> RateLimiter:
    return RateLimiter(redis_client, sleep=lambda seconds: None)


def assert_usable(redis_client: redis.Redis, limiter: RateLimiter, key: str, operation: Operation) -> None:
    """The next call is granted, and the hash is one a later call can use too."""
    assert limiter.try_acquire(key, operation, max_wait=0).granted
    low, high = plausible_rates(operation)
    assert low <= float(redis_client.hget(key, "rate") or "nan") <= high
    assert math.isfinite(float(redis_client.hget(key, "tokens") or "nan"))
    assert 0 < redis_client.ttl(key) <= THIRTY_DAYS
    assert limiter.try_acquire(key, operation, max_wait=0).granted


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_rate_told_to_the_limiter_leaves_the_bucket_usable(
    value: str, limiter: RateLimiter, redis_client: redis.Redis
) -> None:
    key = limiter.key("na", "S", GET_REPORT)
    limiter.observe_rate(key, GET_REPORT, float(value))
    assert_usable(redis_client, limiter, key, GET_REPORT)


@pytest.mark.parametrize("value", [*HOSTILE, "abc", ""])
def test_a_hostile_header_leaves_the_bucket_usable(value: str, limiter: RateLimiter, redis_client: redis.Redis) -> None:
    key = limiter.key("na", "S", GET_REPORT)
    limiter.observe_header(key, GET_REPORT, value)
    assert_usable(redis_client, limiter, key, GET_REPORT)


@pytest.mark.parametrize("value", [*HOSTILE, "abc"])
def test_the_script_itself_refuses_a_hostile_rate(value: str, limiter: RateLimiter, redis_client: redis.Redis) -> None:
    # A caller that does not bound the rate (an older or a foreign one) cannot poison the bucket either.
    key = limiter.key("na", "S", GET_REPORT)
    low, high = plausible_rates(GET_REPORT)
    script = redis_client.register_script(_SCRIPT)
    script(keys=[key], args=["set_rate", repr(GET_REPORT.rate), GET_REPORT.burst, repr(low), repr(high), value])
    assert float(redis_client.hget(key, "rate") or "nan") == GET_REPORT.rate
    assert_usable(redis_client, limiter, key, GET_REPORT)


# Hashes as an older version, a hand edit or a half-finished write could leave them (none expires).
POISONED: dict[str, dict[str, str]] = {
    "tiny rate": {"tokens": "-1", "ts": "1", "rate": "1e-300", "burst": "15"},
    "zero rate": {"tokens": "3", "ts": "1", "rate": "0", "burst": "15"},
    "negative rate": {"tokens": "3", "ts": "1", "rate": "-2", "burst": "15"},
    "nan rate": {"tokens": "3", "ts": "1", "rate": "nan", "burst": "15"},
    "infinite rate": {"tokens": "3", "ts": "1", "rate": "inf", "burst": "15"},
    "text rate": {"tokens": "3", "ts": "1", "rate": "abc", "burst": "15"},
    "nan tokens": {"tokens": "nan", "ts": "1", "rate": "2", "burst": "15"},
    "endless debt": {"tokens": "-1e300", "ts": "1", "rate": "2", "burst": "15"},
    "far future": {"tokens": "0", "ts": "1e300", "rate": "2", "burst": "15"},
    "zero burst": {"tokens": "0", "ts": "1", "rate": "2", "burst": "0"},
    "infinite burst": {"tokens": "0", "ts": "1", "rate": "2", "burst": "inf"},
}


@pytest.mark.parametrize("fields", POISONED.values(), ids=POISONED.keys())
def test_a_poisoned_bucket_is_repaired(fields: dict[str, str], limiter: RateLimiter, redis_client: redis.Redis) -> None:
    key = limiter.key("na", "S", GET_REPORT)
    for name, value in fields.items():
        redis_client.hset(key, name, value)
    assert_usable(redis_client, limiter, key, GET_REPORT)


def test_a_drain_after_a_hostile_rate_still_refills(limiter: RateLimiter, redis_client: redis.Redis) -> None:
    key = limiter.key("na", "S", GET_REPORT)
    limiter.observe_header(key, GET_REPORT, "1e-300")
    limiter.drain(key, GET_REPORT)
    grant = limiter.try_acquire(key, GET_REPORT, max_wait=0)
    assert not grant.granted
    assert 0 < grant.wait <= 1 / GET_REPORT.rate + 0.1  # the documented refill, not 1e300 s
