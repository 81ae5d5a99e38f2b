"""The back-off of a throttled report type: its scope, its growth with 429s in a row, its end at a success."""

from __future__ import annotations

import fakeredis
import pytest

from spreports.errors import QuotaWait
from spreports.spapi.type_throttle import TypeBackoff, TypeThrottled


def test_the_scope_is_the_sellers_or_the_applications() -> None:
    backoff = TypeBackoff(fakeredis.FakeRedis())
    mine = backoff.scope("na", "A1", "GET_X", app_wide=False)
    assert mine != backoff.scope("na", "A2", "GET_X", app_wide=False)
    assert mine != backoff.scope("na", "A1", "GET_Y", app_wide=False)
    assert mine != backoff.scope("eu", "A1", "GET_X", app_wide=False)
    assert backoff.scope("na", "A1", "GET_X", app_wide=True) == backoff.scope("na", "A2", "GET_X", app_wide=True)


def test_each_429_in_a_row_doubles_the_wait_up_to_the_cap_and_a_success_starts_over() -> None:
    client = fakeredis.FakeRedis()
    backoff = TypeBackoff(client, base=60, cap=300)
    scope = backoff.scope("na", "A1", "GET_X", app_wide=False)
    backoff.check(scope, "GET_X")  # nothing to wait for yet
    waits = [backoff.throttled(scope, "GET_X").retry_after for _ in range(5)]
    assert waits == [60, 120, 240, 300, 300]
    with pytest.raises(TypeThrottled) as caught:
        backoff.check(scope, "GET_X")
    assert isinstance(caught.value, QuotaWait)  # a wait, never a failure
    assert 0 < (caught.value.retry_after or 0) <= 300
    assert "GET_X" in str(caught.value) and "seller A1" in str(caught.value)
    backoff.cleared(scope)
    assert backoff.throttled(scope, "GET_X").retry_after == 60
    # Another seller's type is not held.
    backoff.check(backoff.scope("na", "A2", "GET_X", app_wide=False), "GET_X")


@pytest.mark.parametrize("count", [b"abc", b"1.5", b"99999999999999999999999"])
def test_a_strike_count_that_is_not_an_integer_starts_the_run_again(count: bytes) -> None:
    client = fakeredis.FakeRedis()
    backoff = TypeBackoff(client, base=60, cap=300)
    scope = backoff.scope("na", "A1", "GET_X", app_wide=False)
    client.set(f"{scope}:strikes", count)
    assert [backoff.throttled(scope, "GET_X").retry_after for _ in range(2)] == [60, 120]
    assert 0 < client.ttl(f"{scope}:strikes") <= 600
