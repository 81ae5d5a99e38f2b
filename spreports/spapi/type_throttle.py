"""The back-off of one report type after Amazon throttled its ``createReport``, fleet-wide, in Redis.

Amazon throttles some report types on their own: a type it generates only so often, a type with an
application-wide limit, a type disabled for the account. Its 429 ``QuotaExceeded`` does not say why,
so a 429 on ``createReport`` is charged to the report type asked for, never to the seller's shared
createReport bucket (:mod:`spreports.spapi.ratelimit`): the seller's other types keep their turns.

The back-off is scoped as the type's rule is (:mod:`spreports.report_types`): per (region, seller,
type), or per (region, type) for a type with an application-wide limit, where one seller's 429 means
every seller's request would get one too. It starts at :data:`BASE_SECONDS` (createReport's documented
refill, one token a minute), doubles with each 429 in a row up to :data:`CAP_SECONDS`, and the run of
429s is forgotten at the first success. A request of a type backing off raises :class:`TypeThrottled`
(a :class:`~spreports.errors.QuotaWait`: a wait, never a failure) before anything is sent::

    backoff = TypeBackoff(redis)
    scope = backoff.scope("na", seller, report_type, app_wide=False)
    backoff.check(scope, report_type)            # raises TypeThrottled while the type backs off
    ...createReport...                           # on a 429: raise backoff.throttled(scope, report_type)
"""

from __future__ import annotations

import logging

import redis

from spreports import keys
from spreports.errors import QuotaWait
from spreports.redis_errors import redis_errors

__all__ = ["BASE_SECONDS", "CAP_SECONDS", "KEY_PREFIX", "TypeBackoff", "TypeThrottled"]

log = logging.getLogger(__name__)

KEY_PREFIX = keys.TYPE_BACKOFF.prefix
#: The first back-off: createReport's documented refill interval (rate 0.0167/s).
BASE_SECONDS = 60.0
#: The longest back-off: a type refused for longer is still looked at again once an hour.
CAP_SECONDS = 3600.0
APP_WIDE = "*app*"


class TypeThrottled(QuotaWait):
    """Amazon throttled this report type: its requests wait; the seller's other types do not."""


class TypeBackoff:
    """Each throttled report type's back-off: a Redis key whose TTL is the time left (no clock involved)."""

    def __init__(
        self, client: redis.Redis, *, prefix: str = KEY_PREFIX, base: float = BASE_SECONDS, cap: float = CAP_SECONDS
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._base = base
        self._cap = cap

    def scope(self, region: str, seller: str, report_type: str, *, app_wide: bool) -> str:
        """The key of one type's back-off: the seller's own, or the application's for an app-wide limit."""
        return f"{self._prefix}:{region}:{APP_WIDE if app_wide else seller}:{report_type}"

    def check(self, scope: str, report_type: str) -> None:
        """Raise :class:`TypeThrottled` while ``scope`` backs off; return when a request may go."""
        with redis_errors("reading a report type's back-off"):
            left_ms = int(self._redis.pttl(scope))
        if left_ms > 0:
            raise self._wait(scope, report_type, left_ms / 1000)

    def throttled(self, scope: str, report_type: str, *, request_id: str | None = None) -> TypeThrottled:
        """Record a 429 on ``scope`` (lengthening its back-off) and return the wait to raise.

        ``request_id``: Amazon's ``x-amzn-RequestId`` of the 429, for the log line.
        """
        strikes_key = f"{scope}:strikes"
        with redis_errors("recording a 429 of a report type"):
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(strikes_key)
                pipe.expire(strikes_key, int(self._cap * 2))
                counted = pipe.execute(raise_on_error=False)[0]
            if isinstance(counted, redis.ResponseError):
                # A count that is not an integer (a hand edit, another version): the run of 429s starts again.
                self._redis.set(strikes_key, 1, ex=int(self._cap * 2))
                counted = 1
            strikes = int(counted)
            seconds = min(self._cap, self._base * 2.0 ** min(strikes - 1, 30))
            self._redis.set(scope, strikes, px=max(1, int(seconds * 1000)))
        log.warning(
            "Amazon throttled createReport of %s (429 #%d in a row, %s, request id %s): its requests wait %.0f s; "
            "other types go on",
            report_type, strikes, _who(scope), request_id or "?", seconds,
        )  # fmt: skip
        return self._wait(scope, report_type, seconds)

    def cleared(self, scope: str) -> None:
        """A request of ``scope`` went through: forget its run of 429s."""
        with redis_errors("clearing a report type's 429s"):
            self._redis.delete(f"{scope}:strikes")

    def _wait(self, scope: str, report_type: str, seconds: float) -> TypeThrottled:
        return TypeThrottled(
            f"createReport {report_type} ({_who(scope)}): Amazon throttles this report type; "
            f"its requests wait {seconds:.0f} s, the seller's other report types go on",
            retry_after=seconds,
        )


def _who(scope: str) -> str:
    owner = scope.split(":")[-2]
    return "application-wide" if owner == APP_WIDE else f"seller {owner}"
