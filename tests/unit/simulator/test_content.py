"""Simulated documents: exact streaming forms, valid gzip, real headers and charsets."""

from __future__ import annotations

import gzip
import json
import os
import xml.etree.ElementTree as ET
import zlib

import pytest

from spreports.data.schemas import schema_for
from spreports.simulator.content import DocumentBody, DocumentSpec, crc32_combine, crc32_repeat
from spreports.simulator.formats import ORDERS_HEADER, format_kind

UNDECLARED_ORDERS = "GET_FLAT_FILE_ORDER_REPORT_DATA_SHIPPING"
TYPES = [
    "GET_MERCHANT_LISTINGS_ALL_DATA",
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
    "GET_XML_BROWSE_TREE_DATA",
    "GET_SALES_AND_TRAFFIC_REPORT",
]


@pytest.mark.parametrize("report_type", TYPES)
@pytest.mark.parametrize("size", [0, 1, 700, 300_000, 1_500_017])
def test_gzip_form_inflates_to_the_plain_form_and_lengths_are_announced(report_type: str, size: int) -> None:
    body = DocumentBody(DocumentSpec(report_type=report_type, size=size))
    plain = b"".join(body.iter_plain())
    packed = b"".join(body.iter_gzip())
    assert len(plain) == body.length and len(packed) == body.gzip_length
    assert gzip.decompress(packed) == plain
    if size == 0:
        assert plain == b""
    elif size > 1000:
        assert size - 2000 < len(plain) <= size


def test_formats_are_well_formed_at_any_size() -> None:
    declared = schema_for(TYPES[0])
    assert declared is not None
    sources = [column.source for column in declared.columns]
    for size in (1, 5000, 400_000):
        spec = DocumentSpec(size=size, malformed_rate=0)
        listings = b"".join(DocumentBody(spec).iter_plain()).decode("cp1252").splitlines()
        assert listings[0].split("\t") == sources
        assert all(len(line.split("\t")) == len(sources) for line in listings)
        # A type without a declared schema gets the generic orders layout.
        orders = (
            b"".join(DocumentBody(DocumentSpec(report_type=UNDECLARED_ORDERS, size=size)).iter_plain())
            .decode("cp1252")
            .splitlines()
        )
        assert orders[0].split("\t") == list(ORDERS_HEADER)
        assert all(len(line.split("\t")) == len(ORDERS_HEADER) for line in orders)
        ET.fromstring(b"".join(DocumentBody(DocumentSpec(report_type=TYPES[2], size=size)).iter_plain()))
        json.loads(b"".join(DocumentBody(DocumentSpec(report_type=TYPES[3], size=size)).iter_plain()))


@pytest.mark.parametrize(
    ("spec", "codec", "expected_label", "marketplaces"),
    [
        (DocumentSpec(size=40_000), "cp1252", "Cp1252", ("ATVPDKIKX0DER",)),
        (DocumentSpec(size=40_000), "cp932", "windows-31j", ("A1VC38T7YXB528",)),
        (DocumentSpec(size=40_000, charset="Shift_JIS"), "shift_jis", "Shift_JIS", ("A1VC38T7YXB528",)),
        (DocumentSpec(size=40_000, bom=True), "utf-8", "UTF-8", ("ATVPDKIKX0DER",)),
    ],
)
def test_charsets_are_real(spec: DocumentSpec, codec: str, expected_label: str, marketplaces: tuple[str, ...]) -> None:
    body = DocumentBody(spec, marketplaces)
    data = b"".join(body.iter_plain())
    assert body.content_type == f"text/plain; charset={expected_label}"
    text = data.decode(codec)  # strict decoding
    assert any(ord(ch) > 127 for ch in text)
    with pytest.raises(UnicodeDecodeError):
        data.decode("ascii")
    assert data.startswith(b"\xef\xbb\xbf") == spec.bom


def test_bad_specs_are_refused() -> None:
    bad_specs = (
        {"size": -1}, {"charset": "EBCDIC"}, {"bom": True, "charset": "Cp1252"}, {"mislabel": "maybe"},
        {"malformed_rate": 1.5},
    )  # fmt: skip
    for bad in bad_specs:
        with pytest.raises(ValueError):
            DocumentSpec(**bad)


def test_restricted_follows_the_report_type_unless_set() -> None:
    assert DocumentSpec(report_type="GET_FLAT_FILE_ORDER_REPORT_DATA_TAX").is_restricted
    assert not DocumentSpec().is_restricted
    assert DocumentSpec(restricted=True).is_restricted
    assert format_kind("GET_FLAT_FILE_ORDER_REPORT_DATA_TAX") == "orders"


def test_crc32_combine_and_repeat_match_zlib() -> None:
    a, b = os.urandom(1000), os.urandom(777)
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)
    assert crc32_combine(zlib.crc32(a), 0, 0) == zlib.crc32(a)
    for times in (1, 2, 3, 10, 37):
        assert crc32_repeat(zlib.crc32(b), len(b), times) == zlib.crc32(b * times)


def test_a_huge_document_is_planned_without_generating_it() -> None:
    body = DocumentBody(DocumentSpec(size=8 * 2**30))
    assert 8 * 2**30 - 2**20 < body.length <= 8 * 2**30
    assert body.gzip_length < body.length / 3
    first = next(body.iter_gzip())
    assert first[:2] == b"\x1f\x8b"
