"""The cooldown after a FATAL report: requests of the same (seller, report type, options) wait.

Amazon refuses or fails again a request repeated right after a FATAL one; the product waits for
``rules_for(report_type).fatal_cooldown`` instead (:mod:`spreports.report_types`). The cooldown is a
Redis key whose value is its end (epoch seconds) and whose TTL is its length, so it lapses by itself
and the whole fleet sees it.

A FATAL found through a notification does not tell the options it was requested with: its cooldown
is started for *any* options of that (seller, type) (``options=None``), and :func:`cooldown_until`
looks at both the exact and the any-options key. A FATAL is seen in several places (the follower, the
retrieval of its error document, the relay), several times each: given its ``report_id``, one report
starts its cooldown once, however often it is seen. The request path calls this before ``createReport``::

    check_cooldown(redis, seller, report_type, options)  # raises CoolingDown (a QuotaWait) until its end
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import redis

from spreports import keys
from spreports.errors import QuotaWait
from spreports.redis_errors import redis_errors
from spreports.report_types import rules_for

__all__ = ["ANY_OPTIONS", "CoolingDown", "check_cooldown", "cooldown_key", "cooldown_until", "start_cooldown"]

KEY_PREFIX = keys.COOLDOWN.prefix
#: ``<seller>:<reportId>``: the FATAL report that started a cooldown (kept as long as the cooldown).
STARTED_PREFIX = keys.COOLDOWN_STARTED.prefix
ANY_OPTIONS = "*"


def cooldown_key(seller_id: str, report_type: str, options: Mapping[str, str] | None) -> str:
    """The Redis key of one cooldown; ``options=None`` stands for any options."""
    if options is None:
        digest = ANY_OPTIONS
    else:
        canonical = json.dumps(dict(sorted(options.items())), separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
    return f"{KEY_PREFIX}{seller_id}:{report_type}:{digest}"


def start_cooldown(
    client: redis.Redis,
    seller_id: str,
    report_type: str,
    options: Mapping[str, str] | None = None,
    *,
    duration: timedelta | None = None,
    report_id: str | None = None,
    clock: Callable[[], float] = time.time,
) -> datetime:
    """Start (or lengthen) the cooldown after a FATAL report; returns its end (UTC).

    With ``report_id``, a report that started a cooldown already does not lengthen it when seen again.
    """
    length = duration if duration is not None else rules_for(report_type).fatal_cooldown
    seconds = max(1, int(length.total_seconds()))
    end = clock() + seconds
    key = cooldown_key(seller_id, report_type, options)
    with redis_errors("starting a cooldown"):
        current = client.get(key)
        first = report_id is None or client.set(f"{STARTED_PREFIX}{seller_id}:{report_id}", 1, nx=True, ex=seconds)
        if current is not None and (float(current) >= end or not first):
            return datetime.fromtimestamp(float(current), UTC)
        client.set(key, repr(end), ex=seconds)
    return datetime.fromtimestamp(end, UTC)


def cooldown_until(
    client: redis.Redis,
    seller_id: str,
    report_type: str,
    options: Mapping[str, str] | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> datetime | None:
    """When the cooldown of (seller, type, options) ends (UTC), or None when requests may go now."""
    keys = {cooldown_key(seller_id, report_type, options or {}), cooldown_key(seller_id, report_type, None)}
    with redis_errors("reading the cooldowns"):
        values = client.mget(sorted(keys))
    ends = [float(v) for v in values if v is not None]
    now = clock()
    latest = max((end for end in ends if end > now), default=None)
    return None if latest is None else datetime.fromtimestamp(latest, UTC)


class CoolingDown(QuotaWait):
    """A request in a FATAL report's cooldown: deferred until its end, with no SP-API call."""

    def __init__(self, message: str, *, until: datetime, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)
        self.until = until


def check_cooldown(
    client: redis.Redis,
    seller_id: str,
    report_type: str,
    options: Mapping[str, str] | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> None:
    """Raise :class:`CoolingDown` (a wait, not a failure) when (seller, type, options) is cooling down.

    The request task calls it before ``createReport``, inside the block whose :class:`TransientError`
    it hands to ``retry_later``: the task comes back when the cooldown ends, having spent no quota.
    """
    until = cooldown_until(client, seller_id, report_type, options, clock=clock)
    if until is None:
        return
    raise CoolingDown(
        f"{report_type} for seller {seller_id} is cooling down after a FATAL report: deferred until "
        f"{until.isoformat(timespec='seconds')}",
        until=until,
        retry_after=max(0.0, until.timestamp() - clock()),
    )
