"""The demo's last step: its listings as rows, one query over them, and the line to try next."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from spreports.settings import Settings
from spreports.storage import LocalStorage
from spreports.workers.cli.demo_rows import DEMO_QUERY, LISTINGS, show_rows
from tests.data_rows import rows_table, store_manifest, store_rows

STORED = [(LISTINGS, "A1SELLER", "DOC-1"), ("GET_XML_BROWSE_TREE_DATA", "A1SELLER", "DOC-2")]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose storage holds one listings document of seven rows, stored and not yet converted."""
    root = tmp_path / "reports"
    prices = [Decimal(value) for value in ("5", "70", "1", "30", "99.5", "7", "12")]
    rows = {"seller_sku": [f"SKU{n}" for n in range(7)], "item_name": [f"item {n}" for n in range(7)],
            "price": pa.array(prices, pa.decimal128(38, 6))}  # fmt: skip
    store_rows(LocalStorage(root), LISTINGS, rows_table(rows))  # type: ignore[arg-type]
    store_manifest(LocalStorage(root), report_type=LISTINGS)
    return Settings(_env_file=None, data_dir=tmp_path / "data", storage={"url": str(root)})  # type: ignore[call-arg]


def convert(settings: Settings) -> None:
    """Mark the listings document converted, as the conversion does in its manifest."""
    data = {"path": "x.parquet", "rows": 7, "rows_rejected": 0, "values_unparsed": 0, "rejected_lines": [],
            "schema": "declared", "converted_at": "2026-11-28T00:00:00+00:00"}  # fmt: skip
    store_manifest(LocalStorage(Path(settings.storage.url)), report_type=LISTINGS, data=data)


def test_the_five_most_expensive_listings_and_the_line_to_try(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    convert(settings)
    show_rows(settings, STORED, wait=0)
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if "SKU" in line]
    assert [line.split("│")[2].strip() for line in table] == ["SKU4", "SKU1", "SKU3", "SKU6", "SKU5"]
    assert "A1SELLER" in table[0] and "99.500000" in table[0]
    assert out.splitlines()[-1] == f'Try next: spreports data sql "{DEMO_QUERY}"'


def test_rows_not_converted_in_time_are_one_line(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    show_rows(settings, STORED, wait=0)
    assert capsys.readouterr().out.strip() == (
        "The listings were not converted to rows within 0 s (a worker of the data queue does it)."
    )


def test_without_the_data_extra_one_line_names_it(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "duckdb", None)  # as if not installed
    show_rows(settings, STORED, wait=0)
    assert capsys.readouterr().out.strip() == (
        "The documents as rows: install spreports[data] (pip install 'spreports[data]') to turn stored documents into rows"
    )


def test_a_failing_query_is_one_line_and_no_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Listings rows without a price column (converted with columns inferred, say).
    root = tmp_path / "reports"
    store_rows(LocalStorage(root), LISTINGS, rows_table({"seller_sku": ["A"]}))
    store_manifest(LocalStorage(root), report_type=LISTINGS, data={"rows": 1})
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", storage={"url": str(root)})  # type: ignore[call-arg]
    show_rows(settings, STORED, wait=0)
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("The query failed: Binder Error: Referenced column ")
