"""Reservations of the fleet's token bucket: callers that can come back later are given turns, in order."""

from __future__ import annotations

import time

import pytest
import redis

from spreports.errors import QuotaWait
from spreports.spapi.operations import Operation
from spreports.spapi.ratelimit import RateLimiter, prepaid
from tests.integration.spapi.bucket_waits import waited

SLOW = Operation("slowOp", "GET", "/slow", rate=0.5, burst=3)


@pytest.fixture
def limiter(redis_client: redis.Redis) -> RateLimiter:
    return RateLimiter(redis_client, sleep=lambda seconds: None)


def test_waiting_callers_get_successive_turns_within_the_horizon(limiter: RateLimiter) -> None:
    key = limiter.key("na", "S", SLOW)
    since = time.monotonic()
    for _ in range(SLOW.burst):
        limiter.acquire(key, SLOW, max_wait=0, reserve_horizon=30)
    turns = []
    for _ in range(5):
        with pytest.raises(QuotaWait) as told:
            limiter.acquire(key, SLOW, max_wait=0, reserve_horizon=30)
        assert told.value.reserved_bucket == key
        turns.append(told.value.retry_after)
    # One token every 2 s: each caller's turn comes 2 s after the previous one, none together (each told
    # as a wait from the moment it asked: later askers on a busy machine are told less by as much).
    assert all(waited(turn, 2.0 * n, since) for n, turn in enumerate(turns, start=1)), turns


def test_beyond_the_horizon_nothing_is_taken(limiter: RateLimiter) -> None:
    key = limiter.key("na", "S", SLOW)
    since = time.monotonic()
    for _ in range(SLOW.burst):
        limiter.acquire(key, SLOW, max_wait=0)
    with pytest.raises(QuotaWait) as first:
        limiter.acquire(key, SLOW, max_wait=0, reserve_horizon=1)
    assert first.value.reserved_bucket is None and first.value.retry_after is not None
    assert waited(first.value.retry_after, 2.0, since)
    # Nothing was reserved: the next caller is told the same moment, not a later one.
    assert waited(limiter.try_acquire(key, SLOW, max_wait=0).wait, 2.0, since)


def test_a_reserved_turn_is_spent_once_without_asking_redis_again(
    limiter: RateLimiter, redis_client: redis.Redis
) -> None:
    key = limiter.key("na", "S", SLOW)
    for _ in range(SLOW.burst):
        limiter.acquire(key, SLOW, max_wait=0)
    with pytest.raises(QuotaWait) as told:
        limiter.acquire(key, SLOW, max_wait=0, reserve_horizon=30)
    tokens_after_reserving = float(redis_client.hget(key, "tokens") or 0)
    with prepaid(told.value.reserved_bucket):
        assert limiter.acquire(key, SLOW, max_wait=0) == 0.0  # the reserved token
        assert float(redis_client.hget(key, "tokens") or 0) == tokens_after_reserving
        with pytest.raises(QuotaWait):  # a second call in the same run takes its own turn
            limiter.acquire(key, SLOW, max_wait=0)
    other = limiter.key("na", "OTHER", SLOW)
    with prepaid(key):  # a reservation pays only for its own bucket
        limiter.acquire(other, SLOW, max_wait=0)
        assert redis_client.exists(other)
