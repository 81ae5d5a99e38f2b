"""JSON and XML documents: records at a path, sources as dot paths or find() paths, values as text."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.fs as pafs

from spreports.data.records import find_record_path, json_batches, json_sources, xml_batches


def rows(batches: object, sources: list[str]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for batch in batches:  # type: ignore[attr-defined]
        columns = [column.to_pylist() for column in batch.columns]
        for i, number in enumerate(batch.row_numbers.to_pylist()):
            out.append({"_row": number, **{s: c[i] for s, c in zip(sources, columns, strict=True)}})
    return out


def test_json_records_flatten_nested_objects(tmp_path: Path) -> None:
    document = {
        "reportSpecification": {"reportType": "GET_SALES_AND_TRAFFIC_REPORT"},
        "salesAndTrafficByDate": [
            {"date": "2026-11-28", "salesByDate": {"orderedProductSales": {"amount": 12.5, "currencyCode": "EUR"}}},
            {"date": "2026-11-29", "salesByDate": {"orderedProductSales": None}, "flag": True},
        ],
    }
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(document))
    fs = pafs.LocalFileSystem()
    sources = ["date", "salesByDate.orderedProductSales.amount", "flag", "missing.path"]
    assert rows(json_batches(fs, str(path), ("salesAndTrafficByDate",), sources), sources) == [
        {"_row": 1, "date": "2026-11-28", "salesByDate.orderedProductSales.amount": "12.5", "flag": None, "missing.path": None},
        {"_row": 2, "date": "2026-11-29", "salesByDate.orderedProductSales.amount": None, "flag": "true", "missing.path": None},
    ]  # fmt: skip
    assert find_record_path(fs, str(path)) == ("salesAndTrafficByDate",)
    assert json_sources(fs, str(path), ("salesAndTrafficByDate",)) == [
        "date", "salesByDate.orderedProductSales.amount", "salesByDate.orderedProductSales.currencyCode",
        "salesByDate.orderedProductSales", "flag",
    ]  # fmt: skip


def test_xml_records_are_streamed_with_paths_and_attributes(tmp_path: Path) -> None:
    path = tmp_path / "doc.xml"
    path.write_text(
        "<?xml version='1.0'?><AmazonEnvelope><Header/>"
        "<Message><Order><AmazonOrderID>1</AmazonOrderID><Item sku='A'><Price type='p'>3.5</Price></Item></Order></Message>"
        "<Message><Order><AmazonOrderID>2</AmazonOrderID><Item sku='B'/></Order></Message>"
        "</AmazonEnvelope>"
    )
    sources = ["AmazonOrderID", "Item/@sku", "Item/Price[@type='p']", "Nothing"]
    got = rows(xml_batches(pafs.LocalFileSystem(), str(path), ("AmazonEnvelope", "Message", "Order"), sources), sources)
    assert got == [
        {"_row": 1, "AmazonOrderID": "1", "Item/@sku": "A", "Item/Price[@type='p']": "3.5", "Nothing": None},
        {"_row": 2, "AmazonOrderID": "2", "Item/@sku": "B", "Item/Price[@type='p']": None, "Nothing": None},
    ]
