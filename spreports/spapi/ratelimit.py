"""Fleet-wide token buckets in Redis, one per (region, seller, operation).

SP-API usage plans are per application and selling partner, so every worker on every machine must
draw from the same bucket. The bucket lives in one Redis hash updated by a Lua script
(``token_bucket.lua``) that reads Redis ``TIME``: one atomic round trip per call, and no dependence
on the callers' clocks. Buckets start from the operation's documented rate and burst and follow the
``x-amzn-RateLimit-Limit`` header when a successful answer carries one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import resources

import redis

from spreports.errors import QuotaWait, ServiceUnavailable
from spreports.spapi.operations import Operation

log = logging.getLogger(__name__)

KEY_PREFIX = "spreports:ratelimit"
_SCRIPT = resources.files("spreports.spapi").joinpath("token_bucket.lua").read_text(encoding="utf-8")


# The bucket whose token the current task reserved earlier and may now spend (one call's worth).
_prepaid: ContextVar[str | None] = ContextVar("spreports_prepaid_bucket", default=None)


@contextmanager
def prepaid(bucket: str | None) -> Iterator[None]:
    """Within the block, the next call on ``bucket`` spends the token reserved earlier (see :class:`QuotaWait`)."""
    token = _prepaid.set(bucket)
    try:
        yield
    finally:
        _prepaid.reset(token)


@dataclass(frozen=True)
class Grant:
    """What the bucket answered: a token now (after ``wait`` s), reserved for in ``wait`` s, or none."""

    granted: bool
    wait: float
    tokens: float
    reserved: bool = False


#: Added to an in-place wait for the next token (see :meth:`RateLimiter.acquire`).
SLEEP_MARGIN_SECONDS = 0.1


class RateLimiter:
    """Token buckets shared through Redis.

    ``acquire`` either returns once the caller may call Amazon (having slept at most ``max_wait``)
    or raises :class:`QuotaWait` before any call is made: with a token reserved for the caller in
    ``retry_after`` seconds when that is within ``reserve_horizon``, else with nothing taken.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = KEY_PREFIX,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._script = client.register_script(_SCRIPT)
        self._prefix = prefix
        self._sleep = sleep
        # The last rate each bucket was told, so an unchanged header costs no round trip.
        self._known_rates: dict[str, float] = {}

    def key(self, region: str, seller: str, operation: Operation) -> str:
        """The Redis key of one bucket."""
        return f"{self._prefix}:{region}:{seller}:{operation.name}"

    def try_acquire(self, key: str, operation: Operation, max_wait: float, reserve_horizon: float = 0.0) -> Grant:
        """Take one token, or reserve the next one when it comes within ``max(max_wait, reserve_horizon)`` s."""
        granted, wait, tokens = self._run(key, operation, "acquire", max_wait, reserve_horizon)
        return Grant(granted=granted == 1, wait=wait, tokens=tokens, reserved=granted == 2)

    def acquire(self, key: str, operation: Operation, max_wait: float, reserve_horizon: float = 0.0) -> float:
        """Wait for a token (at most ``max_wait`` s) and return the seconds slept; else raise :class:`QuotaWait`."""
        if _prepaid.get() == key:
            _prepaid.set(None)  # reserved by an earlier run of this task: spent now, once
            return 0.0
        grant = self.try_acquire(key, operation, max_wait, reserve_horizon)
        if grant.reserved:
            raise QuotaWait(
                f"{operation.name}: the fleet's quota is in use; a turn is reserved in {grant.wait:.1f} s",
                retry_after=grant.wait,
                reserved_bucket=key,
            )
        if not grant.granted:
            raise QuotaWait(
                f"{operation.name}: the fleet's quota is in use; look again in {grant.wait:.1f} s",
                retry_after=grant.wait,
            )
        if grant.wait > 0:
            # A little after the token's moment: the call reaches Amazon a flight time after the grant,
            # and flight times vary, so calls granted exactly one interval apart can arrive closer.
            self._sleep(grant.wait + SLEEP_MARGIN_SECONDS)
        return grant.wait

    def observe_rate(self, key: str, operation: Operation, rate: float) -> None:
        """Follow Amazon's ``x-amzn-RateLimit-Limit`` for this bucket (only when it changed)."""
        if rate <= 0 or self._known_rates.get(key) == rate:
            return
        self._run(key, operation, "set_rate", rate)
        self._known_rates[key] = rate
        if rate != operation.rate:
            log.info("rate limit of %s is %s/s per Amazon (documented %s/s)", operation.name, rate, operation.rate)

    def drain(self, key: str, operation: Operation) -> None:
        """Empty the bucket after Amazon throttled us, so the whole fleet waits for a refill."""
        self._run(key, operation, "drain", 0)

    def _run(self, key: str, operation: Operation, mode: str, *values: float) -> tuple[int, float, float]:
        args: list[str | int] = [mode, repr(operation.rate), operation.burst, *map(repr, values)]
        try:
            result = self._script(keys=[key], args=args)
        except (redis.RedisError, OSError) as exc:
            raise ServiceUnavailable(f"rate limiter: Redis unavailable ({type(exc).__name__})") from None
        granted, wait, tokens = result
        return int(granted), float(wait), float(tokens)
