"""Reservations of the fleet's token bucket: callers that can come back later are given turns, in order."""

from __future__ import annotations

import pytest
import redis

from spreports.errors import QuotaWait
from spreports.spapi.operations import Operation
from spreports.spapi.ratelimit import RateLimiter, prepaid

SLOW = Operation("slowOp", "GET", "/slow", rate=0.5, burst=3)


@pytest.fixture
def limiter(redis_client: redis.Redis) -> RateLimiter:
    return RateLimiter(redis_client, sleep=lambda seconds: None)


def test_waiting_callers_get_successive_turns_within_the_horizon(limiter: RateLimiter) -> None:
    key = limiter.key("na", "S", SLOW)
    for _ in range(SLOW.burst):
        limiter.acquire(key, SLOW, max_wait=0, reserve_horizon=30)
    turns = []
    for _ in range(5):
        with pytest.raises(QuotaWait) as waited:
            limiter.acquire(key, SLOW, max_wait=0, reserve_horizon=30)
        assert waited.value.reserved_bucket == key
        turns.append(waited.value.retry_after)
    # One token every 2 s: each caller's turn comes 2 s after the previous one, none together.
    assert turns == pytest.approx([2.0, 4.0, 6.0, 8.0, 10.0], abs=0.2)


def test_beyond_the_horizon_nothing_is_taken(limiter: RateLimiter) -> None:
    key = limiter.key("na", "S", SLOW)
    for _ in range(SLOW.burst):
        limiter.acquire(key, SLOW, max_wait=0)
    with pytest.raises(QuotaWait) as first:
        limiter.acquire(key, SLOW, max_wait=0, reserve_horizon=1)
    assert first.value.reserved_bucket is None and first.value.retry_after == pytest.approx(2.0, abs=0.2)
    # Nothing was reserved: the next caller is told the same moment, not a later one.
    assert limiter.try_acquire(key, SLOW, max_wait=0).wait == pytest.approx(2.0, abs=0.2)


def test_a_reserved_turn_is_spent_once_without_asking_redis_again(
    limiter: RateLimiter, redis_client: redis.Redis
) -> None:
    key = limiter.key("na", "S", SLOW)
    for _ in range(SLOW.burst):
        limiter.acquire(key, SLOW, max_wait=0)
    with pytest.raises(QuotaWait) as waited:
        limiter.acquire(key, SLOW, max_wait=0, reserve_horizon=30)
    tokens_after_reserving = float(redis_client.hget(key, "tokens") or 0)
    with prepaid(waited.value.reserved_bucket):
        assert limiter.acquire(key, SLOW, max_wait=0) == 0.0  # the reserved token
        assert float(redis_client.hget(key, "tokens") or 0) == tokens_after_reserving
        with pytest.raises(QuotaWait):  # a second call in the same run takes its own turn
            limiter.acquire(key, SLOW, max_wait=0)
    other = limiter.key("na", "OTHER", SLOW)
    with prepaid(key):  # a reservation pays only for its own bucket
        limiter.acquire(other, SLOW, max_wait=0)
        assert redis_client.exists(other)
