"""Documents of the report types with a declared schema, generated from the schema files themselves.

The header is the columns' ``source`` names; each value is written as Amazon writes it for its type and
marketplace (the declared date format the marketplace uses, its decimal mark, whole yen in Japan, local
times with the zone's abbreviation); some cells are empty; a field that starts with a quote is quoted as
in ``csv``, and the ledger reports quote every field as Amazon's do. A small share of the records is
malformed: a line with a field too few or too many (rejected by a converter) or a value that is no value
of its type (``N/A`` in a quantity). JSON and XML documents put the records at the schema's
``record_path``, JSON extra tables' lists before the main one.

Every record keeps the typed values it was written from (``None`` for an empty or unparseable value, no
values at all for a rejected line), so a test can compare a parser's output with what was meant.
"""

from __future__ import annotations

import json
import random
import re
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timezone
from decimal import Decimal
from typing import Any

from spreports.data.schemas import DeclaredColumn, DeclaredSchema, DeclaredTable
from spreports.simulator.marketplaces import Marketplace, marketplace

__all__ = ["DEFAULT_MALFORMED_RATE", "DeclaredLayout", "Format", "Record", "declared_layout"]

POOL = 211
EXTRA_RECORDS = 7
EMPTY_RATE = 0.08
DEFAULT_MALFORMED_RATE = 0.005
# Amazon's inventory ledger reports quote every field, header included; the other flat files quote none.
QUOTED_TYPES = frozenset({"GET_LEDGER_DETAIL_VIEW_DATA", "GET_LEDGER_SUMMARY_VIEW_DATA"})
# A quote inside a name is literal; a name that starts with one must be quoted (csv's rule).
QUOTED_NAMES = ('Monitor 27" IPS matt', '"Vintage" Poster A2')
GARBAGE = ("N/A", "--", "?")
_BOOLEANS = (("true", "false"), ("Yes", "No"), ("Y", "N"), ("y", "n"))
_VOCABULARY = ("Standard", "Expedited", "Amazon", "Merchant", "DEFAULT", "NEW", "SELLABLE", "Customer Damaged")
# Words Amazon writes in columns whose normalised name ends so (the first match wins).
_WORDS = (
    ("status", ("Shipped", "Pending", "Unshipped", "Cancelled", "Active", "Inactive")),
    ("channel", ("Amazon", "Merchant", "AMAZON_NA", "AMAZON_EU", "DEFAULT")),
    ("transaction_type", ("Order", "Refund", "ServiceFee", "other-transaction")),
    ("amount_type", ("ItemPrice", "ItemFees", "Promotion", "ItemWithheldTax")),
    ("amount_description", ("Principal", "Commission", "FBAPerUnitFulfillmentFee", "Shipping", "Tax")),
    ("disposition", ("SELLABLE", "DEFECTIVE", "CUSTOMER_DAMAGED", "CARRIER_DAMAGED")),
    ("condition", ("New", "Used - Like New", "Used - Good")),
    ("event_type", ("Shipments", "CustomerReturns", "Receipts", "Adjustments")),
    ("fulfillment_center", ("PHX7", "ONT8", "FRA3", "NRT5")),
    ("fulfillment_center_id", ("PHX7", "ONT8", "FRA3", "NRT5")),
)
_STEP = re.compile(r"(\w+)(?:\[(\w+)='([^']*)'\])?")


@dataclass(frozen=True)
class Record:
    """One written record: its text in the document and the typed values it was written from.

    ``values`` is None for a line a converter must reject (wrong field count); ``unparsed`` counts the
    values written as no value of their type (their typed value is None).
    """

    text: str
    values: dict[str, Any] | None
    unparsed: int = 0


@dataclass(frozen=True)
class Format:
    """How one document is laid out (text, before encoding) and how it is labelled.

    Any number of ``rows`` between ``prefix`` and ``suffix`` (repeated in order) is a well-formed document.
    """

    media_type: str
    prefix: str
    rows: tuple[str, ...]
    suffix: str


@dataclass(frozen=True)
class DeclaredLayout:
    """A declared type's document and its records: the main table's (one per row of ``format``), extra tables'."""

    format: Format
    records: tuple[Record, ...]
    extra: dict[str, tuple[Record, ...]] = field(default_factory=dict)


@dataclass
class _Writer:
    schema: DeclaredSchema
    place: Marketplace
    names: tuple[str, ...]
    cities: tuple[tuple[str, str, str], ...]
    rng: random.Random
    malformed_rate: float

    def malformed(self, index: int) -> int | None:
        """Which malformed record (0, 1, ...) the record at ``index`` is, or None for a good one.

        Malformed records are spread evenly at the rate (every 200th at 0.005), so that any document
        of a pool's length has its share; tsv alternates a wrong field count (even) and a bad value (odd).
        """
        before, through = int(index * self.malformed_rate), int((index + 1) * self.malformed_rate)
        return before if through > before else None

    def value(self, column: DeclaredColumn, index: int, key: bool) -> Any:
        """A typed value for the column (None: an empty cell)."""
        if not key and self.rng.random() < EMPTY_RATE:
            return None
        rng = self.rng
        if column.type == "integer":
            return rng.randint(0, 500)
        if column.type == "decimal":
            cents = rng.randint(100, 19999) * (
                -1 if column.name in ("amount", "total_amount") and rng.random() < 0.3 else 1
            )
            return Decimal(cents) if self.place.fraction_digits == 0 else Decimal(cents) / 100
        if column.type == "float":
            return round(rng.uniform(0, 100), 2)
        if column.type == "boolean":
            return rng.random() < 0.5
        if column.type == "date":
            return date(2024, rng.randint(1, 12), rng.randint(1, 28))
        if column.type == "timestamp":
            return datetime(2024, rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59), tzinfo=UTC)  # fmt: skip
        return self.string(column.name, index)

    def string(self, name: str, index: int) -> str:
        rng = self.rng
        city, state, country = rng.choice(self.cities)
        if name.endswith("fnsku"):
            return "X00" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(7))
        if name.endswith("sku"):
            return f"SKU-{index:05d}"
        if "asin" in name:
            return "B0" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(8))
        if name.endswith("order_id"):
            return f"{rng.randint(100, 999)}-{rng.randint(10**6, 10**7 - 1)}-{rng.randint(10**6, 10**7 - 1)}"
        if name.endswith(("_id", "_code", "_number")) and "postal" not in name:
            return str(rng.randint(10**13, 10**14 - 1))
        if name.endswith(("marketplace", "marketplace_name", "sales_channel")):
            return f"Amazon.{self.place.domain}"
        if name.endswith(("name", "title", "description", "search_term")):
            return rng.choice(self.names)
        if "currency" in name:
            return self.place.currency
        for suffix, words in _WORDS:
            if name.endswith(suffix):
                return rng.choice(words)
        for part, value in (("country", country), ("city", city), ("state", state)):
            if part in name:
                return value
        if "postal" in name:
            return f"{rng.randint(10000, 99999)}"
        return rng.choice(_VOCABULARY)

    def text(self, column: DeclaredColumn, value: Any) -> tuple[str, Any]:
        """The value as a flat file writes it, and the typed value that text stands for."""
        if value is None:
            return "", None
        if isinstance(value, bool):
            # Flat files spell booleans per column (true, Yes, Y, y); XML always true/false.
            styles = _BOOLEANS[
                0 if self.schema.format == "xml" else zlib.crc32(column.source.encode()) % len(_BOOLEANS)
            ]
            return styles[0] if value else styles[1], value
        if isinstance(value, Decimal):
            return f"{value:.{self.place.fraction_digits}f}".replace(".", self.place.decimal_mark), value
        if isinstance(value, float):
            return repr(value).replace(".", self.place.decimal_mark), value
        if isinstance(value, datetime):
            return self._timestamp(column, value)
        if isinstance(value, date):
            if column.format is None:
                return value.isoformat(), value
            pattern = self._pattern(column.format)
            text = value.strftime(pattern)
            return text, datetime.strptime(text, pattern).date()
        return str(value), value

    def _pattern(self, formats: tuple[str, ...]) -> str:
        return formats[min(self.place.style, len(formats) - 1)]

    def _timestamp(self, column: DeclaredColumn, value: datetime) -> tuple[str, Any]:
        abbreviation, zone = self.rng.choice(self.place.zones)
        local = value.astimezone(zone)
        if column.format is None:
            return local.isoformat(), value
        pattern = self._pattern(column.format)
        if pattern.endswith("%Z"):
            return local.strftime(pattern[:-2]) + abbreviation, value
        text = local.strftime(pattern)
        return text, _reread(text, pattern, zone)


def _reread(text: str, pattern: str, zone: timezone) -> datetime:
    """What a timestamp written without its zone stands for, read back in that zone (as UTC)."""
    parsed = datetime.strptime(text, pattern)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)


def declared_layout(
    schema: DeclaredSchema,
    *,
    names: tuple[str, ...],
    cities: tuple[tuple[str, str, str], ...],
    seed: int,
    marketplace_id: str,
    charset: str,
    malformed_rate: float = DEFAULT_MALFORMED_RATE,
) -> DeclaredLayout:
    """The document of a declared type for one marketplace, its text encodable with the given names."""
    writer = _Writer(
        schema, marketplace(marketplace_id), (*names, *QUOTED_NAMES), cities, random.Random(seed), malformed_rate
    )
    if schema.format == "tsv":
        return _tsv(writer)
    if schema.format == "json":
        return _json(writer, marketplace_id)
    return _xml(writer, charset)


def _typed_record(writer: _Writer, table: DeclaredTable, index: int) -> tuple[dict[str, Any], dict[str, str | None]]:
    """Typed values and their written texts (None: missing) for one record; maybe one garbage value."""
    values: dict[str, Any] = {}
    texts: dict[str, str | None] = {}
    for column in table.columns:
        text, values[column.name] = writer.text(column, writer.value(column, index, column.name in table.key))
        texts[column.name] = text or None
    return values, texts


def _spoil(writer: _Writer, table: DeclaredTable, values: dict[str, Any], texts: dict[str, str | None]) -> int:
    """Write one non-string value as garbage; 1 when done (the typed value becomes None)."""
    typed = [column.name for column in table.columns if column.type != "string" and column.name not in table.key]
    if not typed:
        return 0
    name = writer.rng.choice(typed)
    values[name], texts[name] = None, writer.rng.choice(GARBAGE)
    return 1


def _tsv(writer: _Writer) -> DeclaredLayout:
    table = writer.schema.main
    quote_all = writer.schema.report_type in QUOTED_TYPES

    def line(fields: list[str]) -> str:
        return "\t".join(_quoted(text, quote_all) for text in fields) + "\n"

    records = []
    for index in range(POOL):
        values, texts = _typed_record(writer, table, index)
        fields = [texts[column.name] or "" for column in table.columns]
        spoiled = writer.malformed(index)
        if spoiled is not None and spoiled % 2 == 0:
            # A cut line or one with a stray field: the count no longer matches the header.
            fields = fields[:-2] if writer.rng.random() < 0.5 else [*fields, "extra"]
            records.append(Record(line(fields), None))
            continue
        unparsed = _spoil(writer, table, values, texts) if spoiled is not None else 0
        fields = [texts[column.name] or "" for column in table.columns]
        records.append(Record(line(fields), values, unparsed))
    header = line([column.source for column in table.columns])
    return _layout("text/plain", header, records, "")


def _layout(
    media_type: str,
    prefix: str,
    records: Sequence[Record],
    suffix: str,
    extra: dict[str, tuple[Record, ...]] | None = None,
) -> DeclaredLayout:
    layout = Format(media_type, prefix, tuple(record.text for record in records), suffix)
    return DeclaredLayout(layout, tuple(records), extra or {})


def _quoted(text: str, quote_all: bool) -> str:
    if quote_all or text.startswith('"'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _json_records(writer: _Writer, table: DeclaredTable, count: int) -> list[tuple[str, Record]]:
    out = []
    for index in range(count):
        values, texts = _typed_record(writer, table, index)
        unparsed = _spoil(writer, table, values, texts) if writer.malformed(index) is not None else 0
        item: dict[str, Any] = {}
        for column in table.columns:
            if texts[column.name] is None and writer.rng.random() < 0.5:
                continue  # a missing key, as often as an explicit null
            native = None if texts[column.name] is None else _json_value(values[column.name], texts[column.name])
            _put(item, column.source.split("."), native)
        text = json.dumps(item, ensure_ascii=False)
        out.append((text, Record(text, values, unparsed)))
    return out


def _json_value(value: Any, text: str | None) -> Any:
    if value is None:
        return text  # garbage stays a string where a number belongs
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent == 0 else float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _put(item: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        item = item.setdefault(part, {})
    item[path[-1]] = value


def _json(writer: _Writer, marketplace_id: str) -> DeclaredLayout:
    schema = writer.schema
    if any(len(table.record_path) != 1 for table in schema.all_tables()):
        raise ValueError(f"{schema.report_type}: the simulator writes json records one level deep")
    spec = {
        "reportType": schema.report_type,
        "reportOptions": {"dateGranularity": "DAY", "asinGranularity": "CHILD"},
        "dataStartTime": "2024-03-01",
        "dataEndTime": "2024-03-31",
        "marketplaceIds": [marketplace_id],
    }
    head = '{"reportSpecification":' + json.dumps(spec)
    extra: dict[str, tuple[Record, ...]] = {}
    for table in schema.tables:
        items = _json_records(writer, table, EXTRA_RECORDS)
        extra[table.dataset] = tuple(record for _, record in items)
        head += f",{json.dumps(table.record_path[0])}:[" + ",".join(text for text, _ in items) + "]"
    main = _json_records(writer, schema.main, POOL)
    prefix = head + f",{json.dumps(schema.record_path[0])}:[\n" + main[0][0]
    # The first record lives in the prefix (any number of rows after it stays valid JSON): its text is "".
    first = Record("", main[0][1].values, main[0][1].unparsed)
    rows = (first, *(Record(",\n" + text, record.values, record.unparsed) for text, record in main[1:]))
    return _layout("application/json", prefix, rows, "\n]}\n", extra)


def _xml(writer: _Writer, charset: str) -> DeclaredLayout:
    table = writer.schema.main
    writer.place = replace(writer.place, decimal_mark=".", style=0)  # XML: a decimal point everywhere
    root, *between, record_tag = table.record_path
    records = []
    for index in range(POOL):
        values, texts = _typed_record(writer, table, index)
        unparsed = _spoil(writer, table, values, texts) if writer.malformed(index) is not None else 0
        element = ET.Element(record_tag)
        for column in table.columns:
            _place(element, column.source, texts[column.name])
        body = ET.tostring(element, encoding="unicode")
        for tag in reversed(between):
            body = f"<{tag}>{body}</{tag}>"
        records.append(Record(body + "\n", values, unparsed))
    prefix = f'<?xml version="1.0" encoding="{charset}"?>\n<{root}>\n'
    if root == "AmazonEnvelope":
        prefix += (
            "<Header><DocumentVersion>1.00</DocumentVersion></Header>\n<MessageType>AllOrdersReport</MessageType>\n"
        )
    return _layout("text/xml", prefix, records, f"</{root}>\n")


def _place(element: ET.Element, source: str, text: str | None) -> None:
    """Put a value at an ElementTree path (``A/B[Type='x']/C``, maybe ending in ``/@attr``)."""
    if text is None:
        return
    path, _, attribute = source.partition("/@")
    node = element
    for step in path.split("/") if path else []:
        match = _STEP.fullmatch(step)
        if match is None:
            raise ValueError(f"cannot write the XML path {source!r}")
        tag, test_tag, test_value = match.groups()
        found = next((c for c in node.findall(tag) if test_tag is None or c.findtext(test_tag) == test_value), None)
        if found is None:
            found = ET.SubElement(node, tag)
            if test_tag is not None:
                ET.SubElement(found, test_tag).text = test_value
        node = found
    if attribute:
        node.set(attribute, text)
    else:
        node.text = text
