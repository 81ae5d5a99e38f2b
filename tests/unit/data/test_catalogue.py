"""The catalogue over a local storage: views per dataset, latest per key, documents, offline settings."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from spreports.data.catalogue import Catalogue, inferred_short_name, open_catalogue
from spreports.errors import MissingExtra
from spreports.storage import LocalStorage
from tests.data_rows import DAY, WINDOW_END, rows_table, store_manifest, store_rows

TYPE = "GET_TEST_DATA"


@dataclass(frozen=True)
class Table:
    """A declared table's names, as the catalogue reads them."""

    short_name: str
    key: tuple[str, ...]


DECLARED = {TYPE: Table("tests", ("sku",))}


def catalogue(root: Path, declared: dict[str, Table] | None = None) -> Catalogue:
    """The catalogue of a local storage at ``root``, with ``declared`` tables (default: :data:`DECLARED`)."""
    names = DECLARED if declared is None else declared
    return open_catalogue(storage=LocalStorage(root), declared=names.get)


def prices(skus: list[str], amounts: list[str], **provenance: object) -> pa.Table:
    """A listing-like document's rows: sku and a decimal price."""
    price = pa.array([Decimal(amount) for amount in amounts], pa.decimal128(38, 6))
    return rows_table({"sku": pa.array(skus, pa.string()), "price": price}, **provenance)  # type: ignore[arg-type]


def test_a_dataset_is_a_view_under_its_full_and_short_name(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    store_rows(storage, TYPE, prices(["A", "B"], ["1.50", "2.25"]))
    found = catalogue(tmp_path)
    sql = found.connection.sql
    assert found.datasets == (TYPE,)
    assert {TYPE, "tests", "latest_tests", "documents"} <= set(found.views)
    assert sql(f'SELECT sku, price FROM "{TYPE}" ORDER BY sku').fetchall() == [
        ("A", Decimal("1.5")),
        ("B", Decimal("2.25")),
    ]
    assert sql("SELECT count(*) FROM tests").fetchall() == [(2,)]
    columns = [row[0] for row in sql("DESCRIBE tests").fetchall()]
    assert columns == ["sku", "price", "_seller_id", "_marketplace_ids", "_report_id", "_report_document_id",
                       "_data_start", "_data_end", "_row_number", "report_type", "seller_id", "date"]  # fmt: skip
    assert sql("SELECT DISTINCT report_type, seller_id, date FROM tests").fetchall() == [(TYPE, "A1SELLER", DAY)]


def test_files_of_one_type_are_read_by_column_name(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    store_rows(storage, TYPE, rows_table({"sku": ["A"], "units": pa.array([3], pa.int64())}, document_id="D1"))
    # A later document: a new column, and units widened to text (a value that was no integer).
    later = rows_table({"sku": ["B"], "units": ["many"], "colour": ["red"]}, document_id="D2", report_id="1002")
    store_rows(storage, TYPE, later)
    rows = catalogue(tmp_path).connection.sql(f'SELECT sku, units, colour FROM "{TYPE}" ORDER BY sku').fetchall()
    assert rows == [("A", "3", None), ("B", "many", "red")]


def test_latest_keeps_the_newest_documents_row_per_key(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    store_rows(storage, TYPE, prices(["A", "B"], ["1.00", "2.00"], document_id="D1", report_id="1001"))
    # The same window restated: a newer report of it changes A's price and says nothing of B.
    store_rows(storage, TYPE, prices(["A"], ["1.10"], document_id="D2", report_id="1002"))
    # A later window ends later: its row wins over a higher report id of an earlier window.
    later = datetime(2026, 11, 29, tzinfo=UTC)
    store_rows(storage, TYPE, prices(["B"], ["2.50"], document_id="D3", report_id="0999", data_end=later))
    # Another seller's A is another row.
    store_rows(storage, TYPE, prices(["A"], ["9.00"], document_id="D4", report_id="1000", seller_id="A2OTHER"))
    sql = catalogue(tmp_path).connection.sql
    assert sql("SELECT count(*) FROM tests").fetchall() == [(5,)]
    latest = sql("SELECT _seller_id, sku, price, _report_document_id FROM latest_tests ORDER BY 1, 2").fetchall()
    assert latest == [
        ("A1SELLER", "A", Decimal("1.1"), "D2"),
        ("A1SELLER", "B", Decimal("2.5"), "D3"),
        ("A2OTHER", "A", Decimal("9"), "D4"),
    ]


def test_latest_takes_the_last_row_of_a_key_repeated_in_one_document(tmp_path: Path) -> None:
    store_rows(LocalStorage(tmp_path), TYPE, prices(["A", "A"], ["1.00", "3.00"]))
    assert catalogue(tmp_path).connection.sql("SELECT price FROM latest_tests").fetchall() == [(Decimal("3"),)]


def test_a_type_without_a_declared_schema_gets_a_derived_name_and_no_latest(tmp_path: Path) -> None:
    store_rows(LocalStorage(tmp_path), "GET_SOMETHING_NEW_DATA", prices(["A"], ["1"]))
    found = catalogue(tmp_path, declared={})
    assert "something_new_data" in found.views
    assert not any(view.startswith("latest_") for view in found.views)
    assert found.connection.sql("SELECT sku FROM something_new_data").fetchall() == [("A",)]


def test_a_declared_key_without_its_column_gives_no_latest_view(tmp_path: Path) -> None:
    store_rows(LocalStorage(tmp_path), TYPE, rows_table({"asin": ["X"]}))
    found = catalogue(tmp_path)
    assert "tests" in found.views
    assert "latest_tests" not in found.views


@pytest.mark.parametrize(
    ("dataset", "short"),
    [("GET_MERCHANT_LISTINGS_ALL_DATA", "merchant_listings_all_data"), ("GET_V2_X", "v2_x"), ("123_ABC", "t_123_abc")],
)
def test_derived_short_names(dataset: str, short: str) -> None:
    assert inferred_short_name(dataset) == short


def test_a_short_name_taken_twice_leaves_the_second_dataset_its_full_name_only(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    store_rows(storage, "GET_A_DATA", prices(["A"], ["1"]))
    store_rows(storage, "GET_B_DATA", prices(["B"], ["2"]))
    found = catalogue(tmp_path, declared={"GET_A_DATA": Table("same", ()), "GET_B_DATA": Table("same", ())})
    assert found.views.count("same") == 1
    assert {"GET_A_DATA", "GET_B_DATA"} <= set(found.views)
    assert found.connection.sql("SELECT sku FROM same").fetchall() == [("A",)]


def test_a_data_column_named_like_a_partition_keeps_its_values(tmp_path: Path) -> None:
    # Ledger and Sales and Traffic rows have a `date` of their own: the path's date must not replace it.
    own = pa.array([datetime(2026, 1, 5).date()], pa.date32())
    store_rows(LocalStorage(tmp_path), TYPE, rows_table({"date": own, "sku": ["A"]}))
    sql = catalogue(tmp_path).connection.sql
    assert sql("SELECT date, sku, seller_id, report_type FROM tests").fetchall() == [
        (datetime(2026, 1, 5).date(), "A", "A1SELLER", TYPE)
    ]
    assert [row[0] for row in sql("DESCRIBE tests").fetchall()].count("date") == 1


def test_documents_lists_every_manifest_with_its_data_section(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    converted_at = "2026-11-28T01:02:03+00:00"
    data = {"path": "_data/x.parquet", "rows": 40, "rows_rejected": 1, "values_unparsed": 2, "rejected_lines": [7],
            "schema": "declared", "converted_at": converted_at}  # fmt: skip
    store_manifest(storage, document_id="D1", data=data)
    store_manifest(storage, document_id="D2", seller_id="A2OTHER", report_id=None, report_type=None)
    found = catalogue(tmp_path)
    assert found.documents == 2
    rows = found.connection.sql(
        "SELECT seller_id, report_document_id, report_type, marketplace_ids, data_end, bytes_out, sha256, "
        "data_rows, rows_rejected, values_unparsed, rejected_lines, data_schema, converted_at FROM documents ORDER BY 2"
    ).fetchall()
    assert rows == [
        ("A1SELLER", "D1", "GET_TEST_DATA", ["ATVPDKIKX0DER"], WINDOW_END, 25, "ab" * 32, 40, 1, 2, [7], "declared",
         datetime.fromisoformat(converted_at)),
        ("A2OTHER", "D2", None, ["ATVPDKIKX0DER"], WINDOW_END, 25, "ab" * 32, None, None, None, None, None, None),
    ]  # fmt: skip


def test_a_broken_manifest_is_left_out(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    store_manifest(storage, document_id="D1")
    storage.write_small(["_index", "A1SELLER", "D2.manifest.json"], b"[not json", content_type="application/json")
    assert catalogue(tmp_path).documents == 1


def test_an_empty_storage_has_an_empty_documents_view_and_no_dataset(tmp_path: Path) -> None:
    found = catalogue(tmp_path)
    assert found.datasets == ()
    assert found.connection.sql("SELECT count(*) FROM documents").fetchall() == [(0,)]


def test_a_dataset_folder_without_a_finished_file_is_no_view(tmp_path: Path) -> None:
    day = tmp_path / "_data" / f"report_type={TYPE}" / "seller_id=A1SELLER" / "date=2026-11-28"
    day.mkdir(parents=True)
    (day / ".DOC-1.parquet.0123.tmp").write_bytes(b"PAR1 being written")  # a conversion under way
    assert catalogue(tmp_path).datasets == ()


def test_a_document_converted_after_connecting_shows_up(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    store_rows(storage, TYPE, prices(["A"], ["1"], document_id="D1"))
    sql = catalogue(tmp_path).connection.sql
    store_rows(storage, TYPE, prices(["B"], ["2"], document_id="D2"))
    assert sql("SELECT count(*) FROM tests").fetchall() == [(2,)]


def test_the_connection_never_installs_or_loads_an_extension_by_itself(tmp_path: Path) -> None:
    sql = catalogue(tmp_path).connection.sql
    settings = sql(
        "SELECT name, value FROM duckdb_settings() WHERE name IN "
        "('autoinstall_known_extensions', 'autoload_known_extensions', 'TimeZone') ORDER BY name"
    ).fetchall()
    assert settings == [("TimeZone", "UTC"), ("autoinstall_known_extensions", "false"),
                        ("autoload_known_extensions", "false")]  # fmt: skip


def test_without_the_data_extra_connect_says_which_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "duckdb", None)  # as if not installed: importing it fails
    with pytest.raises(MissingExtra, match=r"^duckdb not installed: install spreports\[data\] \(pip install"):
        catalogue(tmp_path)


def test_the_shipped_schemas_name_the_views(tmp_path: Path) -> None:
    from spreports.data.schemas import table_for

    listings = table_for("GET_MERCHANT_LISTINGS_ALL_DATA")
    assert listings is not None and listings.key
    rows = rows_table({name: ["x"] for name in listings.key})
    store_rows(LocalStorage(tmp_path), "GET_MERCHANT_LISTINGS_ALL_DATA", rows)
    views = open_catalogue(storage=LocalStorage(tmp_path)).views
    assert {listings.short_name, f"latest_{listings.short_name}"} <= set(views)
