"""The command line's values are bounded as they are parsed: dates in a sane range with their offset,
waits finite and positive. A value out of range is click's one-line bad value (the real command, one
line and exit status 2, is tested in ``tests/integration/test_user_mistakes.py``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import click
import pytest

from spreports.workers.cli.values import MAX_WAIT_SECONDS, BoundedFloat, Moment

DAYS = Moment(days=True)
MOMENTS = Moment()

ACCEPTED_DAYS = {
    "2000-01-01": date(2000, 1, 1),  # the first day accepted
    "2099-12-31": date(2099, 12, 31),  # the last
    "2025-06-30": date(2025, 6, 30),
    "2025-01-01T00:00:00Z": datetime(2025, 1, 1, tzinfo=UTC),
    "2099-12-31T23:59:59+00:00": datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC),
    "2000-01-01T00:00:00Z": datetime(2000, 1, 1, tzinfo=UTC),
}
REFUSED_DAYS = {
    "9999-12-31": "out of range",  # overflowed as the day after was computed
    "1900-01-01": "out of range",  # 1,535 windows
    "1999-12-31": "out of range",
    "2100-01-01": "out of range",
    "0001-01-01": "out of range",
    "1999-12-31T23:59:59Z": "out of range",
    "2100-01-01T00:00:00Z": "out of range",
    "2000-01-01T00:00:00+01:00": "out of range",  # 1999-12-31T23:00Z
    "9999-12-31T23:59:59Z": "out of range",
    "2025-01-01T00:00:00": "no time zone offset",  # naive: Amazon would read it in an unknown zone
    "2025-01-01T00:00": "no time zone offset",
    "2025-13-01": "not an ISO 8601",
    "yesterday": "not an ISO 8601",
    "": "not an ISO 8601",
    "2" * 5000: "too long",
}


@pytest.mark.parametrize(("text", "expected"), ACCEPTED_DAYS.items(), ids=list(ACCEPTED_DAYS))
def test_a_day_or_moment_in_range_is_taken(text: str, expected: date | datetime) -> None:
    assert DAYS.convert(text, None, None) == expected


@pytest.mark.parametrize(("text", "error"), REFUSED_DAYS.items(), ids=[t[:20] for t in REFUSED_DAYS])
def test_a_day_or_moment_out_of_range_or_naive_is_refused(text: str, error: str) -> None:
    with pytest.raises(click.BadParameter, match=error) as refused:
        DAYS.convert(text, None, None)
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 200


@pytest.mark.parametrize("text", ["2025-01-01", "2025-01-01T00:00:00", "1999-12-31T00:00:00Z", "9999-12-31T00:00Z"])
def test_a_moment_needs_a_time_with_its_offset_in_range(text: str) -> None:
    with pytest.raises(click.BadParameter):
        MOMENTS.convert(text, None, None)
    assert MOMENTS.convert("2025-01-01T02:00:00-08:00", None, None) == datetime(2025, 1, 1, 10, tzinfo=UTC)


SECONDS = BoundedFloat(0, MAX_WAIT_SECONDS)
REFUSED_SECONDS = ["-5", "-0.001", "0", "-0", "nan", "inf", "-inf", "1e309", str(MAX_WAIT_SECONDS + 1), "1e12", "x",
                   "", "9" * 100]  # fmt: skip
ACCEPTED_SECONDS = {"0.001": 0.001, "1": 1.0, "3600": 3600.0, str(MAX_WAIT_SECONDS): MAX_WAIT_SECONDS}


@pytest.mark.parametrize("text", REFUSED_SECONDS)
def test_a_wait_is_finite_positive_and_bounded(text: str) -> None:
    with pytest.raises(click.BadParameter):
        SECONDS.convert(text, None, None)


@pytest.mark.parametrize(("text", "expected"), ACCEPTED_SECONDS.items())
def test_a_wait_in_range_is_taken(text: str, expected: float) -> None:
    assert SECONDS.convert(text, None, None) == expected


def test_an_inclusive_range_takes_its_bounds_only() -> None:
    days = BoundedFloat(0, 90, inclusive=True)
    assert (days.convert("0", None, None), days.convert("90", None, None)) == (0.0, 90.0)
    for text in ("-1", "90.001", "nan", "inf"):
        with pytest.raises(click.BadParameter):
            days.convert(text, None, None)
