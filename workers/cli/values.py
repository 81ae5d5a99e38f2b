"""The command line's bounded values: every date, time and number a flag takes is checked as it is parsed.

A value out of its range fails as click's own bad values do (one line naming the flag, exit status 2),
before the command loads its settings or starts anything: no value from the shell reaches date
arithmetic, a socket or a wait unchecked.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # click 8.5 types its ParamType by the value it gives; older ones take no arguments
    _DateType = click.ParamType[date | datetime, Any]
    _FloatType = click.ParamType[float, Any]
else:
    _DateType = _FloatType = click.ParamType

__all__ = ["EARLIEST", "LATEST", "MAX_WAIT_SECONDS", "PORT", "BoundedFloat", "Moment"]

#: The range a date or time of the command line must fall in: Amazon's marketplace has no data before
#: its third-party sellers (2000), and a year past 2099 is a typo (9999-12-31 would overflow the day after).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
#: The longest wait a ``--timeout`` asks for (30 days): a longer one is a typo, not a plan.
MAX_WAIT_SECONDS = 30 * 24 * 3600.0
#: The longest text taken as a date or a number: ISO 8601 date-times are under 40 characters.
MAX_TEXT = 64
#: A TCP port to listen on (0: any free one).
PORT = click.IntRange(0, 65535)


class Moment(_DateType):
    """An ISO 8601 date-time with its offset (a naive one is refused), or with ``days`` also a ``YYYY-MM-DD`` day."""

    name = "datetime"

    def __init__(self, *, days: bool = False) -> None:
        self.days = days

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "DATE|DATETIME" if self.days else "DATETIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date | datetime:
        if isinstance(value, date):
            return value
        text = str(value).strip()
        example = "2025-01-01 or 2025-01-01T00:00:00Z" if self.days else "2025-01-01T00:00:00Z"
        if len(text) > MAX_TEXT:
            self.fail(f"{text[:MAX_TEXT]!r}... is too long for a date (e.g. {example})", param, ctx)
        try:
            if self.days and len(text) == 10:
                return self._in_range(date.fromisoformat(text), text, param, ctx)
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            self.fail(
                f"{text!r} is not an ISO 8601 {'date or ' if self.days else ''}date-time (e.g. {example})", param, ctx
            )
        if moment.tzinfo is None or moment.utcoffset() is None:
            # Amazon would read a time without its offset in an unknown zone.
            self.fail(
                f"{text!r} has no time zone offset: write it as e.g. 2025-01-01T00:00:00Z or ...-08:00", param, ctx
            )
        return self._in_range(moment, text, param, ctx)

    def _in_range(
        self, moment: date | datetime, text: str, param: click.Parameter | None, ctx: click.Context | None
    ) -> date | datetime:
        first, last = (EARLIEST, LATEST) if isinstance(moment, datetime) else (EARLIEST.date(), LATEST.date())
        if not first <= moment < last:
            self.fail(
                f"{text!r} is out of range: give a date from {EARLIEST:%Y-%m-%d} to {LATEST.year - 1}-12-31", param, ctx
            )
        return moment


class BoundedFloat(_FloatType):
    """A finite number in ``(minimum, maximum]`` (``[minimum, maximum]`` with ``inclusive``)."""

    name = "number"

    def __init__(self, minimum: float, maximum: float, *, inclusive: bool = False) -> None:
        self.minimum, self.maximum, self.inclusive = minimum, maximum, inclusive

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        text = str(value).strip()
        try:
            if len(text) > MAX_TEXT:
                raise ValueError(text)
            number = float(text)
        except ValueError:
            self.fail(f"{text[:MAX_TEXT]!r} is not a number", param, ctx)
        low_ok = number >= self.minimum if self.inclusive else number > self.minimum
        if not (math.isfinite(number) and low_ok and number <= self.maximum):
            bound = "from" if self.inclusive else "more than"
            limits = f"{bound} {_plain(self.minimum)} up to {_plain(self.maximum)}"
            self.fail(f"{text} is out of range: give {limits}", param, ctx)
        return number


def _plain(number: float) -> str:
    # 2592000, not 2.592e+06.
    return str(int(number)) if float(number).is_integer() else str(number)
