"""Application-wide request limits per report type, across all sellers of the fleet, in turns.

Some report types may be requested only so often by the whole application, whatever the seller
(``GET_SALES_AND_TRAFFIC_REPORT``: once per 15 minutes, 96 a day): :attr:`ReportTypeRules.app_limit`
in :mod:`spreports.report_types`. Every worker draws from one Redis bucket per type (``app_limit.lua``,
Redis ``TIME``), and the sellers asking take turns: the bucket serves only the seller that has waited
longest, so twenty sellers asking at once are served one per period, in the order they asked, and a
seller that asks again goes to the back of the line. A seller whose task stopped asking loses its
place after ``stale_after`` seconds, so a dead task never holds the line.

A seller not at the head, or finding no token, gets :class:`~spreports.errors.QuotaWait` (a wait, not
a failure) with the time its turn should come; nothing is sent to Amazon.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources

import redis

from spreports import keys
from spreports.errors import QuotaWait
from spreports.redis_errors import redis_errors
from spreports.report_types import AppLimit

__all__ = ["KEY_PREFIX", "AppLimiter"]

KEY_PREFIX = keys.APP_LIMIT.prefix
_SCRIPT = resources.files("spreports.spapi").joinpath("app_limit.lua").read_text(encoding="utf-8")
#: A waiting seller that has not asked again within this many seconds (beyond its expected wait) loses its turn.
STALE_MARGIN_SECONDS = 120.0
#: Periods are kept this much longer than Amazon's: a request granted on time may reach Amazon a little
#: late after the one before it reached it early (network, a token refresh), and Amazon counts arrivals.
PERIOD_MARGIN = 0.02


class AppLimiter:
    """The fleet's application-wide buckets of the report types that have one."""

    def __init__(self, client: redis.Redis, *, prefix: str = KEY_PREFIX, stale_after: float | None = None) -> None:
        self._script = client.register_script(_SCRIPT)
        self._prefix = prefix
        self._stale_after = stale_after

    def acquire(self, report_type: str, seller: str, limit: AppLimit, *, region: str = "na") -> None:
        """Take this seller's turn for one request of ``report_type``; else raise :class:`QuotaWait`."""
        base = f"{self._prefix}:{region}:{report_type}"
        period = limit.per.total_seconds() * (1 + PERIOD_MARGIN)
        stale_after = self._stale_after or (period / limit.requests) * 2 + STALE_MARGIN_SECONDS
        now = datetime.now(UTC)
        day_left = (datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1) - now).total_seconds()
        keys = [base, f"{base}:line", f"{base}:seen", f"{base}:day:{now:%Y%m%d}"]
        args: list[str | int] = [
            seller,
            limit.requests,
            repr(period),
            limit.daily or 0,
            repr(stale_after),
            repr(day_left),
        ]
        with redis_errors("taking a turn of an application limit"):
            granted, wait, position = self._script(keys=keys, args=args)
        if int(granted) == 1:
            return
        raise QuotaWait(
            f"createReport {report_type}: the application-wide limit is in use; seller {seller} is "
            f"number {int(position) + 1} in line, its turn in about {float(wait):.0f} s",
            retry_after=float(wait),
        )
