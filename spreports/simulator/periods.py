"""Schedule periods as Amazon runs them: fixed lengths, except ``P1M``, which is a calendar month.

A schedule's runs are counted from its first one (``occurrence(first, period, n)``), so a monthly
schedule started on the 31st runs on the last day of shorter months and on the 31st again after them.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

#: Seconds of each fixed period (CreateReportScheduleSpecification.period, model order).
PERIOD_SECONDS: dict[str, int] = {
    "PT5M": 300, "PT15M": 900, "PT30M": 1800, "PT1H": 3600, "PT2H": 7200, "PT4H": 14400, "PT8H": 28800,
    "PT12H": 43200, "P1D": 86400, "P2D": 172800, "P3D": 259200, "PT84H": 302400, "P7D": 604800,
    "P14D": 1209600, "P15D": 1296000, "P18D": 1555200, "P30D": 2592000,
}  # fmt: skip
MONTH = "P1M"
#: Every period the model's enum allows, in its order.
PERIODS: tuple[str, ...] = (*PERIOD_SECONDS, MONTH)


def _add_months(moment: datetime, months: int) -> datetime:
    total = moment.month - 1 + months
    year, month = moment.year + total // 12, total % 12 + 1
    # The same day, else the month's last (Jan 31 -> Feb 28).
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def occurrence(first: datetime, period: str, n: int) -> datetime:
    """Run number ``n`` (0 is ``first``) of a schedule every ``period``."""
    if period == MONTH:
        return _add_months(first, n)
    return first + timedelta(seconds=PERIOD_SECONDS[period] * n)


def first_run_after(first: datetime, period: str, moment: datetime) -> int:
    """The number of the schedule's first run strictly after ``moment`` (0 when ``first`` is after it)."""
    if first > moment:
        return 0
    if period == MONTH:
        n = max(0, (moment.year - first.year) * 12 + moment.month - first.month - 1)
    else:
        n = int((moment - first).total_seconds() // PERIOD_SECONDS[period])
    while occurrence(first, period, n) <= moment:
        n += 1
    return n
