"""Typed parsing of one column per declared type: the shared value grammar, bad values null and counted."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from spreports.data.parse import infer_type, parse_column


def parsed(values: list[str | None], type_: str, formats: tuple[str, ...] | None = None) -> tuple[list[object], int]:
    result = parse_column(pa.array(values, pa.utf8()), type_, formats)
    return result.values.to_pylist(), result.unparsed


def test_strings_are_kept_byte_identical() -> None:
    assert parsed([" a ", 'x "y"', None], "string") == ([" a ", 'x "y"', None], 0)


def test_integers_strip_spaces_and_null_what_does_not_parse() -> None:
    assert parsed(["1", " +2 ", "-3", "x", None, "99999999999999999999"], "integer") == (
        [1, 2, -3, None, None, None],
        2,
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12.34", "12.34"),
        ("1.234,56", "1234.56"),
        ("1,234.56", "1234.56"),
        ("12,99", "12.99"),
        ("1.234.567", "1234567"),
        ("1299", "1299"),
        ("-3.5", "-3.5"),
        ("1.1234567", "1.123457"),
    ],
)
def test_decimals_take_either_decimal_mark(text: str, value: str) -> None:
    assert parsed([text], "decimal") == ([Decimal(value)], 0)


def test_a_bad_decimal_is_null_and_counted_the_others_kept() -> None:
    assert parsed(["12,5", "abc", "3"], "decimal") == ([Decimal("12.5"), None, Decimal(3)], 1)


def test_floats_read_like_decimals() -> None:
    assert parsed(["1,5", "2.25", "x"], "float") == ([1.5, 2.25, None], 1)


def test_booleans_in_every_spelling() -> None:
    values = ["true", "FALSE", "Yes", "no", "Y", "n", "t", "F", "1", "0", "maybe"]
    assert parsed(values, "boolean") == ([True, False, True, False, True, False, True, False, True, False, None], 1)


def test_iso_dates_ignore_a_time_part_and_refuse_days_a_month_lacks() -> None:
    values = ["2026-11-28", "2026-11-28T10:00:00Z", "2026-02-30", "28.11.2026"]
    assert parsed(values, "date") == ([date(2026, 11, 28), date(2026, 11, 28), None, None], 2)


def test_dates_with_declared_formats() -> None:
    assert parsed(["28.11.2026", "2026/11/29"], "date", ("%d.%m.%Y", "%Y/%m/%d")) == (
        [date(2026, 11, 28), date(2026, 11, 29)],
        0,
    )


def test_iso_timestamps_in_utc() -> None:
    values = [
        "2026-11-28T10:11:12+01:00",
        "2026-11-28T10:11:12Z",
        "2026-11-28 10:11:12 PST",
        "2026-11-28",
        "2026-11-28T10:11:12",
        "2026-04-31T10:00:00Z",
        "nope",
    ]
    assert parsed(values, "timestamp") == (
        [
            datetime(2026, 11, 28, 9, 11, 12, tzinfo=UTC),
            datetime(2026, 11, 28, 10, 11, 12, tzinfo=UTC),
            datetime(2026, 11, 28, 18, 11, 12, tzinfo=UTC),
            datetime(2026, 11, 28, tzinfo=UTC),
            datetime(2026, 11, 28, 10, 11, 12, tzinfo=UTC),
            None,
            None,
        ],
        2,
    )


def test_timestamps_with_formats_and_zone_abbreviations() -> None:
    formats = ("%Y-%m-%d %H:%M:%S %Z", "%d/%m/%Y %H:%M:%S %Z", "%d.%m.%Y %H:%M:%S %Z")
    values = ["2024-03-11 10:15:00 PST", "11/03/2024 10:15:00 MEZ", "11.03.2024 10:15:00 UTC", "11.03.2024 10:15 UTC"]
    assert parsed(values, "timestamp", formats) == (
        [
            datetime(2024, 3, 11, 18, 15, tzinfo=UTC),
            datetime(2024, 3, 11, 9, 15, tzinfo=UTC),
            datetime(2024, 3, 11, 10, 15, tzinfo=UTC),
            None,
        ],
        1,
    )


def test_empty_values_are_null_and_not_counted() -> None:
    assert parsed(["", None, "  "], "integer") == ([None, None, None], 0)


@pytest.mark.parametrize(
    ("values", "inferred"),
    [
        (["1", "-2", None], "integer"),
        (["1.5", "2"], "decimal"),
        (["12,5", "3"], "decimal"),
        (["yes", "No"], "boolean"),
        (["2026-01-01"], "date"),
        (["2026-01-01T00:00:00Z", "2026-01-02 10:00:00 PST"], "timestamp"),
        (["Y", "N"], "string"),
        (["2026-01-01", "soon"], "string"),
        ([None, ""], "string"),
    ],
)
def test_inferred_types_need_every_value_to_fit(values: list[str | None], inferred: str) -> None:
    assert infer_type(pa.array(values, pa.utf8())) == inferred
