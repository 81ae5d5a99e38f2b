"""Ids from outside are held to Amazon's shape wherever they enter, so no two (seller, document) pairs share a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from spreports.errors import InvalidRequest, SettingsError
from spreports.ids import is_amazon_id
from spreports.settings import Settings, read_sellers_file
from spreports.task_arguments import BackfillRequest, DocumentRequest, ReportFollow, ReportRequest

GOOD = ["A1SELLER", "amzn1.vg.6213651", "amzn1.spdoc.1.4.na.3278d277-b268-44d1-a684-d3b4b42f8862.T7090709584.1186",
        "50347712782", "GET_MERCHANT_LISTINGS_ALL_DATA", "a" * 200, "9"]  # fmt: skip
BAD = ["S:X", "X:missing1", "..", ".", "a/b", "a\\b", "", " ", "a b", "a" * 201, "ä", "-a", "_a", ".hidden",
       "a\nb", "a%2Fb", "a\x00b"]  # fmt: skip


@pytest.mark.parametrize("value", GOOD)
def test_amazons_ids_are_taken(value: str) -> None:
    assert is_amazon_id(value)
    assert DocumentRequest.parse(seller_id=value, report_document_id=value).seller_id == value


@pytest.mark.parametrize("value", BAD)
def test_anything_else_is_refused_in_every_task_argument(value: str) -> None:
    assert not is_amazon_id(value)
    attempts = [
        lambda: DocumentRequest.parse(seller_id=value, report_document_id="D1"),
        lambda: DocumentRequest.parse(seller_id="S1", report_document_id=value),
        lambda: DocumentRequest.parse(seller_id="S1", report_document_id="D1", report_id=value),
        lambda: ReportRequest.parse(report_type="GET_X", seller_id=value),
        lambda: ReportRequest.parse(report_type=value),
        lambda: ReportRequest.parse(report_type="GET_X", marketplace_ids=[value]),
        lambda: ReportFollow.parse(seller_id="S1", report_id=value),
        lambda: BackfillRequest.parse(
            report_type="GET_X",
            seller_id=value,
            data_start_time="2026-01-01T00:00:00Z",
            data_end_time="2026-01-02T00:00:00Z",
        ),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidRequest, match="bad task arguments"):
            attempt()


def test_the_two_pairs_that_shared_a_key_cannot_both_exist() -> None:
    # Seller "S:X" with document "missing1" and seller "S" with document "X:missing1" were one ledger entry,
    # one claim and one in-flight field ("S:X:missing1"); neither is an id now.
    with pytest.raises(InvalidRequest):
        DocumentRequest.parse(seller_id="S:X", report_document_id="missing1")
    with pytest.raises(InvalidRequest):
        DocumentRequest.parse(seller_id="S", report_document_id="X:missing1")


@pytest.mark.parametrize("value", ["S:X", "..", "a b", "ä"])
def test_a_seller_id_that_is_no_id_is_refused_in_the_settings_and_the_sellers_file(value: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="seller_id"):
        Settings(_env_file=None, seller_id=value)
    sellers = tmp_path / "sellers.toml"
    sellers.write_text(f'[sellers."{value}"]\nrefresh_token = "Atzr|x"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="is not a seller id"):
        read_sellers_file(sellers)
