"""Periods and windows: when a schedule fires next, and which period and data window a request belongs to.

Amazon's schedule periods are ISO 8601 durations (``PT5M`` ... ``P30D``, ``P1M``). A ``[[requests]]``
entry's ``every`` is one of a smaller, regular family (``PT<n>M``, ``PT<n>H``, ``P<n>D``) whose periods
are aligned on a fixed Monday, 1970-01-05T00:00Z: ``P1D`` periods are UTC days, ``P7D`` periods are
weeks starting on Monday, ``PT1H`` periods are clock hours.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = [
    "PERIOD_LENGTHS",
    "add_months",
    "parse_every",
    "parse_window",
    "period_start",
    "same_phase",
    "upcoming",
]

#: The length of each schedule period; ``P1M`` (a calendar month) is the one that has none.
PERIOD_LENGTHS: dict[str, timedelta] = {
    "PT5M": timedelta(minutes=5), "PT15M": timedelta(minutes=15), "PT30M": timedelta(minutes=30),
    "PT1H": timedelta(hours=1), "PT2H": timedelta(hours=2), "PT4H": timedelta(hours=4),
    "PT8H": timedelta(hours=8), "PT12H": timedelta(hours=12), "P1D": timedelta(days=1),
    "P2D": timedelta(days=2), "P3D": timedelta(days=3), "PT84H": timedelta(hours=84),
    "P7D": timedelta(days=7), "P14D": timedelta(days=14), "P15D": timedelta(days=15),
    "P18D": timedelta(days=18), "P30D": timedelta(days=30),
}  # fmt: skip

#: Amazon answers times in milliseconds: two times closer than this are the same instant.
TOLERANCE = timedelta(seconds=1)
#: The anchor of request periods: a Monday at midnight UTC, so that ``P7D`` periods are weeks.
ANCHOR = datetime(1970, 1, 5, tzinfo=UTC)
#: The shortest request period: a check every 30 s could not keep a finer cadence.
MIN_EVERY = timedelta(minutes=5)
#: The longest request period and data window: a year (and a day, for leap years); Amazon keeps
#: reports 90 days and no report type takes a longer window, so anything longer is a typo.
MAX_LENGTH = timedelta(days=366)

_EVERY = re.compile(r"^P(?:(?P<days>\d+)D|T(?:(?P<hours>\d+)H|(?P<minutes>\d+)M))$")
_WINDOW_WORDS = re.compile(r"^(?:previous|last)\s+(?:(?P<count>\d+)\s+)?(?P<unit>minute|hour|day|week)s?$")
_UNITS = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
}


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` ``months`` calendar months later, the day clamped to the month's last (Jan 31 -> Feb 28)."""
    total = moment.month - 1 + months
    year, month = moment.year + total // 12, total % 12 + 1
    for day in (moment.day, 30, 29, 28):
        try:
            return moment.replace(year=year, month=month, day=min(day, moment.day))
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def upcoming(first: datetime, period: str, now: datetime) -> datetime:
    """The first run of a schedule starting at ``first`` (every ``period``) that is not before ``now``."""
    if first >= now:
        return first
    length = PERIOD_LENGTHS.get(period)
    if length is None:  # a calendar month: count from ``first`` each time, so a clamped day does not drift
        months = max(0, (now.year - first.year) * 12 + now.month - first.month)
        moment = add_months(first, months)
        return moment if moment >= now else add_months(first, months + 1)
    steps = -((first - now) // length)  # ceiling of (now - first) / length
    return first + steps * length


def same_phase(a: datetime, b: datetime, period: str) -> bool:
    """Whether two run times belong to one schedule: equal but for whole periods (Amazon moving it on)."""
    length = PERIOD_LENGTHS.get(period)
    if length is None:
        return (a.day, a.time()) == (b.day, b.time()) or abs(a - b) <= TOLERANCE
    offset = abs(a - b) % length
    return offset <= TOLERANCE or length - offset <= TOLERANCE


def parse_every(text: str) -> timedelta:
    """The length of an ``every`` (``PT<n>M``, ``PT<n>H``, ``P<n>D``); ValueError names what is accepted."""
    match = _EVERY.match(text.strip().upper())
    if match is None:
        raise ValueError(f"unknown period {_shown(text)}: use PT<n>M, PT<n>H or P<n>D (e.g. PT1H, P1D, P7D)")
    days, hours, minutes = (_count(match[name], text, "period") for name in ("days", "hours", "minutes"))
    length = timedelta(days=days, hours=hours, minutes=minutes)
    if length < MIN_EVERY:
        raise ValueError(f"period {_shown(text)} is shorter than {int(MIN_EVERY.total_seconds() // 60)} minutes")
    if length > MAX_LENGTH:
        raise ValueError(f"period {_shown(text)} is longer than {MAX_LENGTH.days} days")
    return length


def parse_window(text: str) -> timedelta:
    """The length of a data window: ``previous day``, ``last 7 days``, ``last 12 hours`` or ``P7D``."""
    words = " ".join(text.strip().lower().split())
    match = _WINDOW_WORDS.match(words)
    if match is not None:
        count = _count(match["count"] or "1", text, "window")
        if count < 1:
            raise ValueError(f"window {_shown(text)} is empty")
        if count * _UNITS[match["unit"]] > MAX_LENGTH:
            raise ValueError(f"window {_shown(text)} is longer than {MAX_LENGTH.days} days")
        return count * _UNITS[match["unit"]]
    if _EVERY.match(text.strip().upper()) is not None:
        try:
            return parse_every(text)
        except ValueError as exc:
            raise ValueError(str(exc).replace("period", "window", 1)) from None
    raise ValueError(f"unknown window {_shown(text)}: use 'previous day', 'last <n> days', 'last <n> hours' or P<n>D")


def _count(digits: str | None, text: str, what: str) -> int:
    """A count of a period or window: more than 6 digits is longer than any allowed (and than a timedelta)."""
    if digits is None:
        return 0
    if len(digits) > 6:
        raise ValueError(f"{what} {_shown(text)} is longer than {MAX_LENGTH.days} days")
    return int(digits)


def _shown(text: str) -> str:
    # A message names the value, but never more than a line of it.
    return repr(text) if len(text) <= 40 else f"{text[:40]!r}..."


def period_start(now: datetime, every: timedelta) -> datetime:
    """The start of the request period ``now`` falls in (periods of ``every`` from :data:`ANCHOR`)."""
    return ANCHOR + ((now - ANCHOR) // every) * every
