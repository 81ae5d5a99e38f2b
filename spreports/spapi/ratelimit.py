"""Fleet-wide token buckets in Redis, one per (region, seller, operation).

SP-API usage plans are per application and selling partner, so every worker on every machine must
draw from the same bucket. The bucket lives in one Redis hash updated by a Lua script
(``token_bucket.lua``) that reads Redis ``TIME``: one atomic round trip per call, and no dependence
on the callers' clocks. Buckets start from the operation's documented rate and burst and follow the
``x-amzn-RateLimit-Limit`` header when a successful answer carries one.

A header is a number from outside, and a bucket is shared by the whole fleet: a rate is followed only
when it is finite and within :func:`plausible_rates` of the operation. Anything else (``1e-300``,
``nan``, ``abc``...) is logged once per bucket and value as an anomaly and the bucket goes back to
the documented rate. The script checks what it reads as well (a bucket written by an older version
with a rate out of bounds is repaired, not fatal) and computes its expiry before it writes anything.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import resources

import redis

from spreports import keys
from spreports.errors import QuotaWait
from spreports.redis_errors import redis_errors
from spreports.spapi.operations import Operation

log = logging.getLogger(__name__)

KEY_PREFIX = keys.RATE_LIMIT.prefix
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


#: A header rate below the documented one divided by this is not believed: it would stall the fleet
#: (and, tiny enough, overflow the bucket's arithmetic). Amazon lowers no plan that far.
MIN_RATE_DIVISOR = 100.0
#: A header rate above the documented one times this is not believed. The margin is wide on purpose: a
#: rate too high costs at most a 429 (which drains the bucket), and the simulator's clock multiplies its
#: rates by its speed (up to a million).
MAX_RATE_FACTOR = 1_000_000.0
# Longer than any rate header Amazon sends (a few characters); a longer one is not parsed at all.
_MAX_HEADER_CHARS = 32
# Anomalies already logged, per (bucket, value): each is told once, not on every answer.
_MAX_ANOMALIES_KEPT = 1024


def plausible_rates(operation: Operation) -> tuple[float, float]:
    """The lowest and highest ``x-amzn-RateLimit-Limit`` (requests per second) believed for ``operation``."""
    return operation.rate / MIN_RATE_DIVISOR, operation.rate * MAX_RATE_FACTOR


def header_rate(operation: Operation, header: str | None) -> float | None:
    """The rate an ``x-amzn-RateLimit-Limit`` header gives ``operation``: None when absent, NaN when not plausible.

    Amazon sends the header best-effort: an absent or empty one says nothing. A value that is not a
    number, not finite or outside :func:`plausible_rates` is returned as NaN, for the caller to treat as
    an anomaly (see :meth:`RateLimiter.observe_header`).
    """
    if header is None or not header.strip():
        return None
    if len(header) > _MAX_HEADER_CHARS:
        return math.nan
    try:
        rate = float(header)
    except ValueError:
        return math.nan
    low, high = plausible_rates(operation)
    return rate if math.isfinite(rate) and low <= rate <= high else math.nan


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
        self._anomalies: set[tuple[str, str]] = set()

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

    def observe_header(self, key: str, operation: Operation, header: str | None) -> None:
        """Follow an answer's ``x-amzn-RateLimit-Limit`` header; an implausible one resets the documented rate."""
        rate = header_rate(operation, header)
        if rate is None:
            return
        if math.isnan(rate):
            assert header is not None  # an absent header is None, never NaN
            self._anomaly(key, operation, header)
            rate = operation.rate
        self.observe_rate(key, operation, rate)

    def observe_rate(self, key: str, operation: Operation, rate: float) -> None:
        """Follow a rate Amazon gave for this bucket (only when it changed); an implausible one is ignored."""
        low, high = plausible_rates(operation)
        known = self._known_rates.get(key)
        if not low <= rate <= high or (known is not None and math.isclose(known, rate, rel_tol=1e-9)):
            return
        self._run(key, operation, "set_rate", rate)
        if rate != operation.rate:
            log.info("rate limit of %s is %s/s per Amazon (documented %s/s)", operation.name, rate, operation.rate)

    def _anomaly(self, key: str, operation: Operation, header: str) -> None:
        value = header[:_MAX_HEADER_CHARS]
        if (key, value) in self._anomalies:
            return
        if len(self._anomalies) >= _MAX_ANOMALIES_KEPT:
            self._anomalies.clear()
        self._anomalies.add((key, value))
        low, high = plausible_rates(operation)
        log.warning(
            "ignoring x-amzn-RateLimit-Limit %r for %s of bucket %s: not a rate from %g to %g/s; "
            "using the documented %g/s",
            value, operation.name, key, low, high, operation.rate,
        )  # fmt: skip

    def drain(self, key: str, operation: Operation) -> None:
        """Empty the bucket after Amazon throttled us, so the whole fleet waits for a refill."""
        self._run(key, operation, "drain", 0)

    def _run(self, key: str, operation: Operation, mode: str, *values: float) -> tuple[int, float, float]:
        low, high = plausible_rates(operation)
        args: list[str | int] = [mode, repr(operation.rate), operation.burst, repr(low), repr(high), *map(repr, values)]
        with redis_errors("taking a rate-limit token"):
            result = self._script(keys=[key], args=args)
        granted, wait, tokens, rate = result
        # The rate the bucket holds now: a header that says the same needs no set_rate round trip.
        self._known_rates[key] = float(rate)
        return int(granted), float(wait), float(tokens)
