"""Round trips for the converter's tests: a simulated document of a declared type and the rows it must give.

:func:`document` makes the document the simulator serves (decoded to the UTF-8 text the product stores);
:meth:`Generated.expected` parses it by the declared schema with plain Python (``csv``, ``json``,
``xml.etree``), by the value grammar written in the shared spec: the typed rows (normalised names and
``_row_number``), the rejected lines and the count of values that did not parse. It is independent of
the converter, so the converter's output can be compared with it value by value::

    generated = document("GET_MERCHANT_LISTINGS_ALL_DATA", marketplace="A1PA6795UKMFR9")
    expected = generated.expected()
    # convert generated.text, then: rows == expected.rows, rows_rejected == expected.rows_rejected, ...
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from spreports.data.schemas import DeclaredColumn, DeclaredTable, schema_for
from spreports.simulator.content import DocumentBody, DocumentSpec
from spreports.simulator.formats import CODECS

__all__ = ["Expected", "Generated", "document", "parse_value"]

ZONES = {
    "UTC": 0, "GMT": 0, "Z": 0, "PST": -8, "PDT": -7, "MST": -7, "MDT": -6, "CST": -6, "CDT": -5, "EST": -5,
    "EDT": -4, "BST": 1, "CET": 1, "MEZ": 1, "CEST": 2, "MESZ": 2, "JST": 9, "IST": 5.5, "AEST": 10, "AEDT": 11,
}  # fmt: skip
TRUE = {"true", "yes", "y", "t", "1"}
FALSE = {"false", "no", "n", "f", "0"}
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?[\d.,]*\d[\d.,]*")


class Unparsed(ValueError):
    """A value that is no value of its column's type."""


@dataclass(frozen=True)
class Expected:
    """What converting a document must give for one table."""

    rows: list[dict[str, Any]]
    rows_rejected: int
    rejected_lines: list[int]
    values_unparsed: int


@dataclass(frozen=True)
class Generated:
    """A simulated document of a declared type, as the product stores it (UTF-8 text, no BOM)."""

    report_type: str
    marketplace: str
    text: str

    def expected(self, dataset: str | None = None) -> Expected:
        """The rows of the main table (or of the extra table named ``dataset``), parsed by the schema."""
        schema = schema_for(self.report_type)
        assert schema is not None, f"{self.report_type} has no declared schema"
        table = next(t for t in schema.all_tables() if t.dataset == (dataset or self.report_type))
        if schema.format == "tsv":
            return _tsv(table, self.text)
        if schema.format == "json":
            return _records(table, _json_records(table, self.text))
        return _records(table, _xml_records(table, self.text))


def document(
    report_type: str,
    *,
    marketplace: str = "ATVPDKIKX0DER",
    seed: int = 0,
    size: int = 64 * 1024,
    malformed_rate: float = 0.02,
    charset: str | None = None,
) -> Generated:
    """The simulator's document of ``report_type`` for a marketplace (plain, decoded from its charset)."""
    spec = DocumentSpec(
        report_type=report_type, size=size, gzip=False, seed=seed, malformed_rate=malformed_rate, charset=charset
    )
    body = DocumentBody(spec, (marketplace,))
    decoder = codecs.getincrementaldecoder(CODECS[body.charset])("strict")
    text = "".join(decoder.decode(chunk) for chunk in body.iter_plain()) + decoder.decode(b"", final=True)
    return Generated(report_type, marketplace, text.removeprefix("\ufeff"))


def _tsv(table: DeclaredTable, text: str) -> Expected:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    header = next(csv.reader([lines[0]], dialect="excel-tab"))
    by_source = {column.source: column for column in table.columns}
    columns = [by_source.get(name) for name in header]
    rows, rejected, unparsed = [], [], 0
    for number, line in enumerate(lines[1:], start=2):
        fields = next(csv.reader(io.StringIO(line), dialect="excel-tab"), [])
        if len(fields) != len(header):
            rejected.append(number)
            continue
        row: dict[str, Any] = {column.name: None for column in table.columns}
        for column, raw in zip(columns, fields, strict=True):
            if column is not None:
                row[column.name], failed = _typed(column, raw)
                unparsed += failed
        row["_row_number"] = number
        rows.append(row)
    return Expected(rows, len(rejected), rejected[:10], unparsed)


def _json_records(table: DeclaredTable, text: str) -> list[dict[str, Any]]:
    node: Any = json.loads(text)
    for part in table.record_path:
        node = node.get(part, []) if isinstance(node, dict) else []
    records = []
    for item in node:
        record: dict[str, Any] = {}
        for column in table.columns:
            value: Any = item
            for part in column.source.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            record[column.name] = value
        records.append(record)
    return records


def _xml_records(table: DeclaredTable, text: str) -> list[dict[str, Any]]:
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == table.record_path[0]
    path = "/".join(table.record_path[1:])
    records = []
    for element in root.findall(path):
        record: dict[str, Any] = {}
        for column in table.columns:
            where, _, attribute = column.source.partition("/@")
            found = element.find(where) if where else element
            if found is None:
                record[column.name] = None
            else:
                record[column.name] = found.get(attribute) if attribute else found.text
        records.append(record)
    return records


def _records(table: DeclaredTable, records: list[dict[str, Any]]) -> Expected:
    rows, unparsed = [], 0
    for number, record in enumerate(records, start=1):
        row: dict[str, Any] = {}
        for column in table.columns:
            row[column.name], failed = _typed(column, record[column.name])
            unparsed += failed
        row["_row_number"] = number
        rows.append(row)
    return Expected(rows, 0, [], unparsed)


def _typed(column: DeclaredColumn, raw: Any) -> tuple[Any, int]:
    """The typed value and 1 when the raw value did not parse (it is then None)."""
    try:
        return parse_value(column, raw), 0
    except Unparsed:
        return None, 1


def parse_value(column: DeclaredColumn, raw: Any) -> Any:
    """One value by the shared grammar: None for empty, the typed value, or :class:`Unparsed`."""
    if raw is None or raw == "":
        return None
    if column.type == "string":
        return raw if isinstance(raw, str) else json.dumps(raw)
    if isinstance(raw, bool) and column.type == "boolean":
        return raw
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return _number(column, raw)
    text = str(raw).strip()
    if not text:
        return None
    try:
        return _from_text(column, text)
    except (ValueError, InvalidOperation, ArithmeticError):
        raise Unparsed(text) from None


def _number(column: DeclaredColumn, raw: int | float) -> Any:
    if column.type == "integer" and isinstance(raw, int):
        return raw
    if column.type == "decimal":
        return Decimal(str(raw))
    if column.type == "float":
        return float(raw)
    return _from_text(column, str(raw))


def _from_text(column: DeclaredColumn, text: str) -> Any:
    kind = column.type
    if kind == "integer":
        if not _INTEGER.fullmatch(text):
            raise ValueError(text)
        return int(text)
    if kind in ("decimal", "float"):
        number = _decimal(text)
        return number if kind == "decimal" else float(number)
    if kind == "boolean":
        if text.lower() in TRUE:
            return True
        if text.lower() in FALSE:
            return False
        raise ValueError(text)
    if kind == "date":
        if column.format is None:
            return date.fromisoformat(text[:10])
        return _first(column.format, lambda pattern: datetime.strptime(text, pattern).date())
    if kind == "timestamp":
        if column.format is None:
            return _iso_timestamp(text)
        return _first(column.format, lambda pattern: _strptime(text, pattern))
    raise ValueError(kind)


def _decimal(text: str) -> Decimal:
    if not _NUMBER.fullmatch(text):
        raise ValueError(text)
    marks = [mark for mark in ".," if mark in text]
    if len(marks) == 2:
        decimal_mark = "." if text.rfind(".") > text.rfind(",") else ","
        text = text.replace("," if decimal_mark == "." else ".", "")
    elif marks and text.count(marks[0]) > 1:
        text = text.replace(marks[0], "")  # several equal marks: thousands separators
        decimal_mark = "."
    else:
        decimal_mark = marks[0] if marks else "."
    return Decimal(text.replace(decimal_mark, "."))


def _first(patterns: tuple[str, ...], parse: Any) -> Any:
    for pattern in patterns:
        try:
            return parse(pattern)
        except ValueError:
            continue
    raise ValueError("no declared format fits")


def _zone(abbreviation: str) -> timezone:
    if abbreviation not in ZONES:
        raise ValueError(abbreviation)
    return timezone(timedelta(hours=ZONES[abbreviation]))


def _strptime(text: str, pattern: str) -> datetime:
    zone = UTC
    if pattern.endswith("%Z"):
        text, _, abbreviation = text.rpartition(" ")
        pattern, zone = pattern[:-2].rstrip(), _zone(abbreviation)
    parsed = datetime.strptime(text, pattern)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)


def _iso_timestamp(text: str) -> datetime:
    head, _, tail = text.rpartition(" ")
    if head and tail.isalpha():
        parsed, zone = datetime.fromisoformat(head), _zone(tail)
    else:
        parsed, zone = datetime.fromisoformat(text), UTC
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)
