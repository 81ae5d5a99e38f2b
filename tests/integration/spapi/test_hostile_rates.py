"""No number from Amazon, and nothing a bucket's hash holds, leaves a bucket the fleet cannot use.

The real Lua script runs in a real Redis. After each hostile rate (told through the limiter, told to the
script directly, or left in the hash by an older version), the next call of that seller and operation
gets its token, and the bucket's hash holds a plausible rate and expires.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import redis

from spreports.simulator import Simulator
from spreports.spapi import SpapiClient
from spreports.spapi.operations import CREATE_REPORT, GET_REPORT, Operation
from spreports.spapi.ratelimit import _SCRIPT, RateLimiter, plausible_rates
from tests.sim import simulator_settings

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


@pytest.mark.parametrize("value", [*HOSTILE, "abc", "", "1" * 200])
def test_the_simulator_sending_a_hostile_header_leaves_the_sellers_calls_working(
    value: str,
    simulator: Simulator,
    redis_url: str,
    redis_client: redis.Redis,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = simulator_settings(simulator, redis_url, tmp_path)
    client = SpapiClient.for_seller(settings, simulator.seller_id, redis=redis_client)
    simulator.set_faults(odd_rate_headers=1, odd_rate_header=value)
    with caplog.at_level(logging.WARNING, logger="spreports.spapi.ratelimit"):
        client.create_report("GET_MERCHANT_LISTINGS_ALL_DATA", ["ATVPDKIKX0DER"])
        client.create_report("GET_MERCHANT_LISTINGS_ALL_DATA", ["ATVPDKIKX0DER"])  # the next call of the bucket
    assert simulator.faults.odd_rate_headers == 0  # the first answer carried the hostile header
    [key] = redis_client.keys(f"spreports:ratelimit:*:{simulator.seller_id}:createReport")
    low, high = plausible_rates(CREATE_REPORT)
    assert low <= float(redis_client.hget(key, "rate") or "nan") <= high
    assert 0 < redis_client.ttl(key) <= THIRTY_DAYS
    anomalies = [r for r in caplog.records if "x-amzn-RateLimit-Limit" in r.getMessage()]
    assert len(anomalies) == (0 if value == "" else 1)
