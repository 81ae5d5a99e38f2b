"""The Arrow side of the catalogue (how S3 rows are read), over pyarrow's local file system: no S3 needed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from spreports.data.datasets import arrow_dataset, unify
from spreports.storage import LocalStorage
from tests.data_rows import rows_table, store_rows

TYPE = "GET_TEST_DATA"


@pytest.mark.parametrize(
    ("first", "second", "united"),
    [
        (pa.int64(), pa.float64(), pa.float64()),
        (pa.int64(), pa.string(), pa.string()),
        (pa.decimal128(10, 2), pa.decimal128(38, 6), pa.decimal128(38, 6)),
        (pa.null(), pa.date32(), pa.date32()),
        (pa.timestamp("us", tz="UTC"), pa.bool_(), pa.string()),
    ],
)
def test_a_column_of_two_types_reads_as_the_widest(
    first: pa.DataType, second: pa.DataType, united: pa.DataType
) -> None:
    schema = unify([pa.schema([("a", first), ("b", pa.string())]), pa.schema([("c", pa.int64()), ("a", second)])])
    assert schema.names == ["a", "b", "c"]
    assert schema.field("a").type == united


def test_files_read_as_one_dataset_with_partitions(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    store_rows(storage, TYPE, rows_table({"sku": ["A"], "units": pa.array([3], pa.int64())}, document_id="D1"))
    store_rows(storage, TYPE, rows_table({"sku": ["B"], "units": ["many"]}, document_id="D2", seller_id="A2OTHER"))
    found = arrow_dataset(pafs.LocalFileSystem(), str(tmp_path / "_data" / f"report_type={TYPE}"))
    assert found is not None
    dataset, columns, kept = found
    assert columns[:2] == ("sku", "units") and kept == ("seller_id", "date")
    connection = duckdb.connect()
    connection.register("rows", dataset)
    assert connection.sql("SELECT sku, units, seller_id, date FROM rows ORDER BY sku").fetchall() == [
        ("A", "3", "A1SELLER", date(2026, 11, 28)),
        ("B", "many", "A2OTHER", date(2026, 11, 28)),
    ]


def test_a_file_column_named_like_a_partition_keeps_its_values(tmp_path: Path) -> None:
    own = pa.array([date(2026, 1, 5)], pa.date32())
    store_rows(LocalStorage(tmp_path), TYPE, rows_table({"date": own}))
    found = arrow_dataset(pafs.LocalFileSystem(), str(tmp_path / "_data" / f"report_type={TYPE}"))
    assert found is not None
    dataset, columns, kept = found
    assert kept == ("seller_id",) and "date" in columns
    assert dataset.to_table(columns=["date", "seller_id"]).to_pylist() == [
        {"date": date(2026, 1, 5), "seller_id": "A1SELLER"}
    ]


def test_no_finished_file_is_no_dataset(tmp_path: Path) -> None:
    folder = tmp_path / "_data" / f"report_type={TYPE}" / "seller_id=A1SELLER" / "date=2026-11-28"
    folder.mkdir(parents=True)
    (folder / ".D1.parquet.0123.tmp").write_bytes(b"PAR1 being written")
    assert arrow_dataset(pafs.LocalFileSystem(), str(tmp_path / "_data" / f"report_type={TYPE}")) is None
