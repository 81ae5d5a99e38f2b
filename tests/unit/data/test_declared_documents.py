"""The simulator's documents of every declared type parse back, by the schema, to the values they were written from.

Each document is generated from the schema files (headers are the ``source`` names; values as Amazon
writes them per marketplace), parsed by the round-trip helper (plain Python, the shared value grammar),
and compared with the typed values the simulator wrote: rejected lines, unparsed values and all.
"""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from spreports.data.schemas import all_schemas, schema_for
from spreports.simulator.content import DocumentBody, DocumentSpec
from spreports.simulator.formats import CODECS, declared_records
from tests.data_roundtrip import Generated, document

US, DE, JP = "ATVPDKIKX0DER", "A1PA6795UKMFR9", "A1VC38T7YXB528"
CHARSETS = {US: "Cp1252", DE: "Cp1252", JP: "windows-31j"}
REPORT_TYPES = [schema.report_type for schema in all_schemas()]
# Within one pool of records: the document is the records the simulator lists, in order.
SIZE = 20_000


def written(report_type: str, marketplace: str, malformed_rate: float) -> tuple[int, dict[str, Any]]:
    """The simulator's records (typed values) and the size of a document of its first 150 of them."""
    schema = schema_for(report_type)
    assert schema is not None
    charset = "UTF-8" if schema.format != "tsv" else CHARSETS[marketplace]
    layout = declared_records(report_type, charset, 0, marketplace, malformed_rate)
    assert layout is not None
    codec = CODECS[charset]
    texts = (layout.format.prefix, *layout.format.rows[:150], layout.format.suffix)
    return sum(len(text.encode(codec)) for text in texts), {"main": layout.records, **layout.extra}


@pytest.mark.parametrize("marketplace", [US, DE, JP])
@pytest.mark.parametrize("report_type", REPORT_TYPES)
def test_every_declared_type_round_trips_to_the_values_written(report_type: str, marketplace: str) -> None:
    size, records = written(report_type, marketplace, 0.05)
    generated = document(report_type, marketplace=marketplace, size=size, malformed_rate=0.05)
    schema = schema_for(report_type)
    assert schema is not None
    for table in schema.all_tables():
        expected = generated.expected(None if table.dataset == report_type else table.dataset)
        written_records = records["main" if table.dataset == report_type else table.dataset]
        count = len(expected.rows) + expected.rows_rejected
        assert count == (150 if table.dataset == report_type else len(written_records))
        rows = iter(expected.rows)
        rejected = []
        for record in written_records[:count]:
            if record.values is None:
                rejected.append(record)
                continue
            row = next(rows)
            row.pop("_row_number")
            assert row == record.values
        assert expected.rows_rejected == len(rejected)
        assert expected.values_unparsed == sum(record.unparsed for record in written_records[:count])


def test_tsv_headers_are_amazons_names_and_line_numbers_count_the_header() -> None:
    generated = document("GET_MERCHANT_LISTINGS_ALL_DATA", size=SIZE, malformed_rate=0)
    schema = schema_for("GET_MERCHANT_LISTINGS_ALL_DATA")
    assert schema is not None
    header = generated.text.split("\n", 1)[0].split("\t")
    assert header == [column.source for column in schema.columns]
    expected = generated.expected()
    assert expected.rows_rejected == 0 and expected.values_unparsed == 0
    assert [row["_row_number"] for row in expected.rows] == list(range(2, len(expected.rows) + 2))


def test_marketplaces_write_money_and_dates_their_way() -> None:
    settlement = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"
    us, de = (document(settlement, marketplace=m, size=SIZE, malformed_rate=0).text for m in (US, DE))
    us_row = next(csv.DictReader(us.splitlines(), dialect="excel-tab"))
    de_row = next(csv.DictReader(de.splitlines(), dialect="excel-tab"))
    assert "." in us_row["amount"] and "," in de_row["amount"]
    assert us_row["posted-date"][4] == "-" and de_row["posted-date"][2] == "."
    jp = document("GET_MERCHANT_LISTINGS_ALL_DATA", marketplace=JP, size=SIZE, malformed_rate=0)
    jp_rows = list(csv.DictReader(jp.text.splitlines(), dialect="excel-tab"))
    assert all(row["price"].isdigit() for row in jp_rows if row["price"])  # whole yen
    assert all(row["open-date"].endswith(" JST") for row in jp_rows if row["open-date"])
    assert any(ord(ch) > 0x3000 for ch in jp.text)  # Japanese names, sent as windows-31j


def test_documents_have_empty_cells_quoted_fields_and_malformed_lines() -> None:
    listings = document("GET_MERCHANT_LISTINGS_ALL_DATA", size=120_000, malformed_rate=0.05)
    assert "\t\t" in listings.text
    assert '\t"""Vintage"" Poster A2"\t' in listings.text or '"""Vintage"" Poster A2"\t' in listings.text
    assert 'Monitor 27" IPS matt' in listings.text  # a quote inside a field is literal
    expected = listings.expected()
    assert expected.rows_rejected > 0 and expected.values_unparsed > 0
    assert expected.rejected_lines == sorted(expected.rejected_lines)[:10]
    ledger = document("GET_LEDGER_DETAIL_VIEW_DATA", size=SIZE, malformed_rate=0).text
    assert all(line.startswith('"') and line.endswith('"') for line in ledger.splitlines())


def test_json_and_xml_records_sit_at_the_record_path() -> None:
    sales = json.loads(document("GET_SALES_AND_TRAFFIC_REPORT", size=SIZE).text)
    assert sales["reportSpecification"]["reportType"] == "GET_SALES_AND_TRAFFIC_REPORT"
    assert sales["salesAndTrafficByDate"] and sales["salesAndTrafficByAsin"]
    orders = ET.fromstring(document("GET_XML_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL", size=SIZE).text.encode())
    assert orders.tag == "AmazonEnvelope" and orders.findall("Message/Order")


@pytest.mark.parametrize("report_type", REPORT_TYPES)
def test_any_size_is_well_formed_and_the_default_rate_is_small(report_type: str) -> None:
    body = DocumentBody(DocumentSpec(report_type=report_type, size=300_000, gzip=False, charset="UTF-8"))
    text = b"".join(body.iter_plain()).decode("utf-8")
    generated = Generated(report_type, US, text)
    expected = generated.expected()
    assert len(expected.rows) > 200
    # "Now and then": one malformed record in every 200, never none in a document that long.
    assert 0 < expected.rows_rejected + expected.values_unparsed <= len(expected.rows) * 0.03
