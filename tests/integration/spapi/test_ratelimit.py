"""The fleet-wide token bucket: its arithmetic in a real Redis, and its bound across OS processes."""

from __future__ import annotations

import multiprocessing
import time

import pytest
import redis

from spreports.errors import RateLimited
from spreports.settings import Settings
from spreports.spapi import SpapiClient
from spreports.spapi.operations import CREATE_REPORT, GET_REPORT, Operation
from spreports.spapi.ratelimit import SLEEP_MARGIN_SECONDS, RateLimiter
from tests.integration.spapi.bucket_waits import waited
from tests.integration.spapi.conftest import SELLER, make_settings
from tests.integration.spapi.fake_amazon import Answer, FakeAmazon

SLOW = Operation("slowOp", "GET", "/slow", rate=0.5, burst=3)


@pytest.fixture
def limiter(redis_client: redis.Redis) -> RateLimiter:
    return RateLimiter(redis_client, sleep=lambda seconds: None)


def test_burst_then_wait(limiter: RateLimiter) -> None:
    key = limiter.key("na", "S", SLOW)
    since = time.monotonic()
    grants = [limiter.try_acquire(key, SLOW, max_wait=0) for _ in range(4)]
    assert [g.granted for g in grants] == [True, True, True, False]
    assert waited(grants[3].wait, 2.0, since)  # one token per 2 s


def test_short_waits_are_reserved_and_slept(redis_client: redis.Redis) -> None:
    slept: list[float] = []
    limiter = RateLimiter(redis_client, sleep=slept.append)
    key = limiter.key("na", "S", SLOW)
    since = time.monotonic()
    for _ in range(3):
        limiter.acquire(key, SLOW, max_wait=5)
    limiter.acquire(key, SLOW, max_wait=5)  # 4th: reserved, ~2 s
    limiter.acquire(key, SLOW, max_wait=5)  # 5th: queued behind it, ~4 s
    margin = SLEEP_MARGIN_SECONDS  # a sleeper wakes a little after its turn
    assert len(slept) == 2 and waited(slept[0], 2.0 + margin, since) and waited(slept[1], 4.0 + margin, since), slept
    with pytest.raises(RateLimited) as caught:
        limiter.acquire(key, SLOW, max_wait=5)  # 6th would wait ~6 s
    assert caught.value.retry_after is not None and waited(caught.value.retry_after, 6.0, since)
    # A refused caller took nothing: the next caller waits the same.
    assert waited(limiter.try_acquire(key, SLOW, max_wait=0).wait, 6.0, since)


def test_rate_can_be_retuned_and_drained(limiter: RateLimiter, redis_client: redis.Redis) -> None:
    key = limiter.key("eu", "S", SLOW)
    limiter.observe_rate(key, SLOW, 10.0)
    since = time.monotonic()
    for _ in range(3):
        limiter.try_acquire(key, SLOW, max_wait=0)
    assert waited(limiter.try_acquire(key, SLOW, max_wait=0).wait, 0.1, since)
    limiter.drain(key, SLOW)
    assert float(redis_client.hget(key, "tokens") or 1) <= 0
    assert redis_client.ttl(key) > 0  # buckets never outlive their information


def test_buckets_are_per_seller_region_and_operation(limiter: RateLimiter) -> None:
    keys = {limiter.key("na", "S", SLOW), limiter.key("eu", "S", SLOW), limiter.key("na", "T", SLOW),
            limiter.key("na", "S", GET_REPORT)}  # fmt: skip
    assert len(keys) == 4
    for key in keys:
        assert limiter.try_acquire(key, SLOW, max_wait=0).granted


def test_client_raises_before_calling_amazon(
    fake_amazon: FakeAmazon, spapi_settings: Settings, redis_client: redis.Redis
) -> None:
    fake_amazon.on("POST", "/reports/2021-06-30/reports", Answer(202, {"reportId": "R"}))
    client = SpapiClient.for_seller(spapi_settings, SELLER, redis=redis_client, max_wait=1.0)
    for _ in range(CREATE_REPORT.burst):
        client.create_report("T", ["ATVPDKIKX0DER"])
    with pytest.raises(RateLimited) as caught:
        client.create_report("T", ["ATVPDKIKX0DER"])
    assert 50 < (caught.value.retry_after or 0) <= 61  # createReport refills one per ~60 s
    assert len(fake_amazon.api_requests()) == CREATE_REPORT.burst


HAMMER_SECONDS = 8.0
HAMMER_START_KEY = "test:ratelimit:hammer-start"


def _hammer(redis_url: str, endpoint: str) -> int:
    """Call getReport as fast as the bucket allows for HAMMER_SECONDS after the fleet's first call."""
    store = redis.Redis.from_url(redis_url)
    client = SpapiClient.for_seller(make_settings(redis_url, endpoint), SELLER, redis=store, max_wait=2.0)
    calls = 0
    # Spawned processes start at very different times on a loaded machine: the window opens at the first
    # call of any of them, and every process makes at least one call however late it starts.
    give_up = time.time() + 120.0
    until = give_up
    while time.time() < until:
        try:
            client.get_report("R1")
            calls += 1
        except RateLimited as exc:
            time.sleep(min(exc.retry_after or 0.1, max(0.0, until - time.time())))
            continue
        if calls == 1:
            store.set(HAMMER_START_KEY, repr(time.time()), nx=True)
            until = float(store.get(HAMMER_START_KEY) or 0) + HAMMER_SECONDS
    return calls


def test_processes_share_one_bucket(fake_amazon: FakeAmazon, redis_client: redis.Redis, redis_url: str) -> None:
    rate = 10.0  # Amazon's header retunes getReport's bucket (documented 2/s, burst 15)
    report = {"reportId": "R1", "reportType": "T", "processingStatus": "DONE", "createdTime": "2024-03-10T13:47:20Z"}
    fake_amazon.on("GET", "/reports/2021-06-30/reports/R1", Answer(200, report, {"x-amzn-RateLimit-Limit": str(rate)}))
    context = multiprocessing.get_context("spawn")
    workers = 4
    with context.Pool(workers) as pool:
        counts = pool.starmap(_hammer, [(redis_url, fake_amazon.url)] * workers)
    assert all(count >= 1 for count in counts), counts
    times = sorted(s.at for s in fake_amazon.api_requests())
    print(f"{len(times)} calls in {times[-1] - times[0]:.2f} s, per process {counts}")
    assert sum(counts) == len(times)
    assert len(times) > GET_REPORT.burst, "the bucket refilled and was used again"
    # However the calls of the four processes interleave, no window holds more than rate*span + burst.
    # Arrival times at the server are compared with grants on Redis's clock: 1 s of slack absorbs the
    # scheduling delay between the two on a busy machine (it allows 10 calls, below one extra burst of 15).
    slack = 1.0
    assert rate * slack < GET_REPORT.burst
    for i in range(len(times)):
        for j in range(i, len(times)):
            assert j - i + 1 <= rate * (times[j] - times[i] + slack) + GET_REPORT.burst, (i, j)
