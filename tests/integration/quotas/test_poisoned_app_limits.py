"""A fleet-wide limit whose keys hold values out of bounds is repaired by the next request, not fatal.

The real script (application-wide limits) and the real back-off of a throttled type run in a real Redis. The keys are written as an older version, a hand edit or a
half-finished write could have left them, without expiry; the next seller asking gets its turn.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis

from spreports.report_types import AppLimit
from spreports.spapi.app_limits import KEY_PREFIX, AppLimiter
from spreports.spapi.type_throttle import TypeBackoff

TYPE = "GET_SALES_AND_TRAFFIC_REPORT"
LIMIT = AppLimit(requests=1, per=timedelta(minutes=15), daily=96)
BASE = f"{KEY_PREFIX}:na:{TYPE}"

# suffix of the key -> (field or None for a string, value)
POISONED: dict[str, tuple[str, str | None, str]] = {
    "nan tokens": ("", "tokens", "nan"),
    "infinite tokens": ("", "tokens", "inf"),
    "text tokens": ("", "tokens", "abc"),
    "far future": ("", "ts", "1e300"),
    "nan time": ("", "ts", "nan"),
    "text time of the seller ahead": (":seen", "GONE", "abc"),
    "nan time of the seller ahead": (":seen", "GONE", "nan"),
    "text count": (":day", None, "abc"),
    "fractional count": (":day", None, "1.5"),
}


@pytest.mark.parametrize(("suffix", "field", "value"), POISONED.values(), ids=POISONED.keys())
def test_a_poisoned_limit_gives_the_next_seller_its_turn(
    suffix: str, field: str | None, value: str, redis_client: redis.Redis
) -> None:
    day = f"{BASE}:day:{datetime.now(UTC):%Y%m%d}"
    # A full bucket, but for a time out of bounds: a broken clock field must not hold its refill back for ever.
    redis_client.hset(BASE, "tokens", "0" if field == "ts" else "1")
    redis_client.hset(BASE, "ts", "1")
    if suffix == ":seen":
        redis_client.zadd(f"{BASE}:line", {"GONE": 1})  # a seller ahead whose task died long ago
    key = day if suffix == ":day" else BASE + suffix
    if field is None:
        redis_client.set(key, value)
    else:
        redis_client.hset(key, field, value)
    AppLimiter(redis_client).acquire(TYPE, "A1SELLER", LIMIT)  # granted: returns, no QuotaWait or error
    for name in (BASE, day):
        assert 0 < redis_client.ttl(name) <= 30 * 86400
    assert float(redis_client.hget(BASE, "tokens") or "nan") == 0.0
    assert redis_client.get(day) == b"1"


def test_a_type_back_off_whose_count_is_not_an_integer_starts_again(redis_client: redis.Redis) -> None:
    backoff = TypeBackoff(redis_client, base=60, cap=300)
    scope = backoff.scope("na", "A1SELLER", TYPE, app_wide=False)
    redis_client.set(f"{scope}:strikes", "abc")
    assert [backoff.throttled(scope, TYPE).retry_after for _ in range(2)] == [60, 120]
