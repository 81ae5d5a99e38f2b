"""Typed values from text, a whole column at a time: one parser per declared type, in Arrow compute.

Every parser takes a column of text (nulls where the cell was empty) and gives the typed column and how
many non-empty values did not parse (those become null; the row is kept). The grammar is the one the
schema files and the simulator share (/tmp/prompts/data-spec.md, "Value grammar"): strings are kept
byte-identical; other types have surrounding spaces stripped; decimals take either ``.`` or ``,`` as the
decimal mark (the rightmost of the two when both occur, a lone ``,`` too; repeated marks are thousands
separators); timestamps are ISO 8601 or a declared strptime format, a trailing zone abbreviation read from
a fixed table, and stored in UTC.

No Python loop touches a value on the usual path: a column of a million cells costs a few passes of
Arrow kernels. Only timestamps Arrow's ISO cast refuses (a day 31 in a 30-day month) are retried one by
one in Python, so that one bad value nulls one cell, not the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from spreports.data.layout import moment
from spreports.data.schemas import ColumnType

__all__ = ["ARROW_TYPES", "Parsed", "infer_type", "parse_column"]

#: The Arrow type each declared type is stored as.
ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.utf8(),
    "integer": pa.int64(),
    "decimal": pa.decimal128(38, 6),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "float": pa.float64(),
}

#: Zone abbreviations Amazon writes after a time (settlement and some flat files), as UTC offsets.
ZONES = {
    "UTC": "+00:00", "GMT": "+00:00", "Z": "+00:00", "PST": "-08:00", "PDT": "-07:00", "MST": "-07:00",
    "MDT": "-06:00", "CST": "-06:00", "CDT": "-05:00", "EST": "-05:00", "EDT": "-04:00", "BST": "+01:00",
    "CET": "+01:00", "MEZ": "+01:00", "CEST": "+02:00", "MESZ": "+02:00", "JST": "+09:00", "IST": "+05:30",
    "AEST": "+10:00", "AEDT": "+11:00",
}  # fmt: skip
_TRUE = ["true", "yes", "y", "t", "1"]
_FALSE = ["false", "no", "n", "f", "0"]
_INTEGER = r"^[+-]?[0-9]{1,18}$"
# After the marks are settled: 32 integer digits and 6 fraction digits fit decimal128(38, 6).
_DECIMAL = r"^[+-]?([0-9]{1,32}(\.[0-9]*)?|\.[0-9]+)$"
_PLAIN_DECIMAL = r"^-?[0-9]{1,32}(\.[0-9]{1,6})?$"
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].*)?$"
_ISO_TIMESTAMP = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:?[0-9]{2})$"
)
_OFFSET = r"(Z|[+-][0-9]{2}:?[0-9]{2})$"
_ZONE = r" ?([A-Z]{1,4})$"


@dataclass(frozen=True)
class Parsed:
    """A typed column and how many of its non-empty values did not parse (now null)."""

    values: pa.Array
    unparsed: int


def parse_column(text: pa.Array, type_: ColumnType | str, formats: tuple[str, ...] | None = None) -> Parsed:
    """``text`` (utf8, null where empty) as ``type_``; ``formats`` are strptime patterns for dates and timestamps."""
    if type_ == "string":
        return Parsed(text, 0)
    fast = _cast_whole(text, type_, formats)
    if fast is not None:
        return Parsed(fast, 0)
    stripped = _empty_as_null(pc.utf8_trim_whitespace(text))
    given = stripped.null_count
    if type_ == "integer":
        values = _integers(stripped)
    elif type_ == "decimal":
        values = _decimals(stripped)
    elif type_ == "float":
        values = pc.cast(_if_valid(_decimal_text(stripped), _DECIMAL), pa.float64())
    elif type_ == "boolean":
        values = _booleans(stripped)
    elif type_ == "date":
        values = _dates(stripped, formats)
    elif type_ == "timestamp":
        values = _timestamps(stripped, formats)
    else:
        raise ValueError(f"unknown column type {type_!r}")
    return Parsed(values, values.null_count - given)


def _cast_whole(text: pa.Array, type_: str, formats: tuple[str, ...] | None) -> pa.Array | None:
    """The column cast in one pass when every value is already in Arrow's own form (nearly always), else None.

    The usual document has plain ``12.34``, ``2026-11-28T10:00:00+00:00`` and ``3``: one cast kernel and no
    regular expression. One value in another form (a comma decimal, a zone abbreviation, junk) and the
    whole column takes the parser's way instead.
    """
    if type_ == "boolean":
        # As Amazon's flat files write them: two passes instead of trimming, lowering and looking up.
        return pc.equal(text, "true") if pc.all(pc.is_in(text, pa.array(["true", "false"]))).as_py() else None
    if formats or type_ == "date":
        return None
    try:
        return pc.cast(text, ARROW_TYPES[type_])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def infer_type(sample: pa.Array) -> ColumnType:
    """The narrowest type every non-empty value of ``sample`` parses as; ``string`` when none fits or all are empty.

    Only exact shapes count (a date is ``YYYY-MM-DD`` alone, a boolean is ``true``/``false``/``yes``/``no``),
    so that a column of codes that merely start like a date or read ``Y``/``N`` stays text.
    """
    stripped = _empty_as_null(pc.utf8_trim_whitespace(sample))
    present = len(stripped) - stripped.null_count
    if present == 0:
        return "string"
    if pc.all(pc.match_substring_regex(stripped, _INTEGER)).as_py():
        return "integer"
    if pc.all(pc.match_substring_regex(stripped, r"^[+-]?[0-9][0-9.,]*$")).as_py():
        return "decimal" if _decimals(stripped).null_count == stripped.null_count else "string"
    if pc.all(pc.is_in(pc.utf8_lower(stripped), pa.array(["true", "false", "yes", "no"]))).as_py():
        return "boolean"
    if pc.all(pc.match_substring_regex(stripped, r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")).as_py():
        return "date" if _dates(stripped, None).null_count == stripped.null_count else "string"
    timestamps = _timestamps(stripped, None)
    if timestamps.null_count == stripped.null_count:
        return "timestamp"
    return "string"


def _empty_as_null(text: pa.Array) -> pa.Array:
    if text.null_count == len(text):
        return pa.nulls(len(text), pa.utf8())
    empty = pc.equal(text, "")
    if not pc.any(empty).as_py():
        return text
    return pc.if_else(empty, pa.scalar(None, pa.utf8()), text)


def _if_valid(text: pa.Array, pattern: str) -> pa.Array:
    """``text`` with every value not matching ``pattern`` made null."""
    valid = pc.match_substring_regex(text, pattern)
    if pc.all(valid).as_py():  # nulls are skipped: all present values match
        return text
    return pc.if_else(valid, text, pa.scalar(None, pa.utf8()))


def _integers(text: pa.Array) -> pa.Array:
    valid = _if_valid(text, _INTEGER)
    return pc.cast(pc.replace_substring_regex(valid, r"^\+", ""), pa.int64())


def _decimal_text(text: pa.Array) -> pa.Array:
    """Decimal text with ``.`` as the decimal mark and no thousands separators."""
    if pc.all(pc.match_substring_regex(text, _PLAIN_DECIMAL)).as_py():
        return text
    # Which mark is the decimal one: the last mark when both kinds occur or it occurs once; a mark
    # repeated with no other kind is a thousands separator.
    repeated = pc.or_(
        pc.match_substring_regex(text, r"^[^.]*,[^.]*,[^.]*$"), pc.match_substring_regex(text, r"^[^,]*\.[^,]*\.[^,]*$")
    )
    comma_last = pc.match_substring_regex(text, r",[0-9]*$")
    no_marks = pc.replace_substring_regex(text, r"[.,]", "")
    comma_decimal = pc.replace_substring(pc.replace_substring(text, ".", ""), ",", ".")
    dot_decimal = pc.replace_substring(text, ",", "")
    return pc.if_else(repeated, no_marks, pc.if_else(comma_last, comma_decimal, dot_decimal))


def _decimals(text: pa.Array) -> pa.Array:
    valid = _if_valid(_decimal_text(text), _DECIMAL)
    target = ARROW_TYPES["decimal"]
    try:
        return pc.cast(valid, target)
    except pa.ArrowInvalid:
        # More than 6 fraction digits somewhere: rounded (half to even) to the stored scale.
        wide = pc.cast(pc.replace_substring_regex(valid, r"^([^.]*\.[0-9]{0,12}).*$", r"\1"), pa.decimal128(38, 12))
        return pc.cast(pc.round(wide, 6, round_mode="half_to_even"), target)


def _booleans(text: pa.Array) -> pa.Array:
    lower = pc.utf8_lower(text)
    true, false = pc.is_in(lower, pa.array(_TRUE)), pc.is_in(lower, pa.array(_FALSE))
    return pc.if_else(true, True, pc.if_else(false, False, pa.scalar(None, pa.bool_())))


def _dates(text: pa.Array, formats: tuple[str, ...] | None) -> pa.Array:
    if not formats:
        day = pc.utf8_slice_codeunits(_if_valid(text, _ISO_DATE), 0, 10)
        try:
            return pc.cast(day, pa.date32())
        except pa.ArrowInvalid:  # a day the month lacks (strptime would roll it over): that one value is null
            return pa.array([_one_date(value) for value in day.to_pylist()], pa.date32())
    return pc.cast(_strptime(text, formats), pa.date32())


def _timestamps(text: pa.Array, formats: tuple[str, ...] | None) -> pa.Array:
    target = ARROW_TYPES["timestamp"]
    if formats:
        return pc.cast(_strptime(text, formats), target)
    iso = _with_offsets(text)
    # A date alone is midnight; no offset is UTC.
    iso = pc.if_else(
        pc.match_substring_regex(iso, r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"),
        pc.binary_join_element_wise(iso, "T00:00:00", ""),
        iso,
    )
    iso = pc.if_else(pc.match_substring_regex(iso, _OFFSET), iso, pc.binary_join_element_wise(iso, "+00:00", ""))
    valid = _if_valid(iso, _ISO_TIMESTAMP)
    try:
        return pc.cast(valid, target)
    except pa.ArrowInvalid:
        return pa.array([_one_timestamp(value) for value in valid.to_pylist()], target)


def _with_offsets(text: pa.Array, *, strptime: bool = False) -> pa.Array:
    """A trailing zone abbreviation (``... 10:11:12 PST``) replaced by its offset; unknown ones left to fail.

    For ISO text the offset follows the time directly (``10:11:12-08:00``); for a strptime pattern's
    ``%z`` the separator before the abbreviation stays and the offset has no colon (``10:11:12 -0800``).
    """
    if not pc.any(pc.match_substring_regex(text, r"[0-9] ?[A-Z]{2,4}$")).as_py():
        return text
    for zone, offset in ZONES.items():
        if len(zone) > 1:
            replacement = rf"\1\2{offset.replace(':', '')}" if strptime else rf"\1{offset}"
            text = pc.replace_substring_regex(text, f"([0-9])( ?){zone}$", replacement)
    return text


def _strptime(text: pa.Array, formats: tuple[str, ...]) -> pa.Array:
    """The first of ``formats`` each value parses with (a trailing ``%Z`` read from the zone table), in UTC."""
    result: pa.Array | None = None
    for pattern in formats:
        values, fmt = text, pattern
        if fmt.endswith("%Z"):
            values, fmt = _with_offsets(text, strptime=True), fmt[:-2] + "%z"
        parsed = pc.strptime(values, format=fmt, unit="us", error_is_null=True)
        if parsed.type.tz is None:
            parsed = pc.cast(parsed, pa.timestamp("us", tz="UTC"))
        result = parsed if result is None else pc.coalesce(result, parsed)
    assert result is not None  # a declared format list is never empty
    return result


def _one_date(value: Any) -> date | None:
    """One ISO date Arrow's cast refused, parsed by Python; None when it is no real day."""
    try:
        return None if value is None else date.fromisoformat(value)
    except ValueError:
        return None


def _one_timestamp(value: Any) -> datetime | None:
    """One ISO 8601 text Arrow's cast refused, parsed by Python, in UTC; None when it is no real moment."""
    return moment(value)
