"""The catalogue over S3 (moto's server): rows read through pyarrow, with no DuckDB extension installed or loaded."""

from __future__ import annotations

import uuid
from decimal import Decimal

import boto3
import pyarrow as pa
import pytest
from click.testing import CliRunner

from spreports.data.catalogue import open_catalogue
from spreports.storage import S3Storage
from spreports.workers.cli import main
from tests.data_rows import rows_table, store_manifest, store_rows

TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"


@pytest.fixture
def storage(aws_endpoint: str) -> S3Storage:
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return S3Storage(bucket, "pre/fix")


def listing(skus: list[str], amounts: list[str], **provenance: object) -> pa.Table:
    price = pa.array([Decimal(amount) for amount in amounts], pa.decimal128(38, 6))
    return rows_table({"seller_sku": skus, "price": price}, **provenance)  # type: ignore[arg-type]


def test_rows_on_s3_read_through_pyarrow_without_extensions(storage: S3Storage) -> None:
    store_rows(storage, TYPE, listing(["A", "B"], ["1.00", "2.00"], document_id="D1", report_id="1001"))
    # The same window restated, with a column the first document did not have.
    restated = listing(["A"], ["1.10"], document_id="D2", report_id="1002").append_column("colour", pa.array(["red"]))
    store_rows(storage, TYPE, restated)
    # A conversion under way: its hidden temporary object is no file of the dataset yet.
    storage.write_small(["_data", f"report_type={TYPE}", "seller_id=A1SELLER", "date=2026-11-28", ".D3.parquet.x.tmp"],
                        b"PAR1 partial", content_type="application/octet-stream")  # fmt: skip
    store_manifest(storage, document_id="D1", report_type=TYPE)
    store_manifest(storage, document_id="D2", report_type=TYPE)

    found = open_catalogue(storage=storage)
    sql = found.connection.sql
    assert found.datasets == (TYPE,)
    assert sql(f'SELECT seller_sku, colour, seller_id FROM "{TYPE}" ORDER BY 1, 2').fetchall() == [
        ("A", "red", "A1SELLER"), ("A", None, "A1SELLER"), ("B", None, "A1SELLER"),
    ]  # fmt: skip
    assert sql("SELECT seller_sku, price FROM latest_listings ORDER BY 1").fetchall() == [
        ("A", Decimal("1.1")), ("B", Decimal("2")),
    ]  # fmt: skip
    assert sql("SELECT count(*) FROM listings WHERE seller_id = 'A1SELLER' AND date = '2026-11-28'").fetchall() == [
        (3,)
    ]
    assert sql("SELECT count(*) FROM documents WHERE report_type = ?", params=[TYPE]).fetchall() == [(2,)]
    # Only what the wheel links in is loaded; httpfs (DuckDB's S3) was neither downloaded nor loaded.
    extensions = sql(
        "SELECT extension_name, loaded, installed, install_mode FROM duckdb_extensions() "
        "WHERE loaded OR (installed AND install_mode <> 'STATICALLY_LINKED')"
    ).fetchall()
    assert extensions and all(mode == "STATICALLY_LINKED" for _, _, _, mode in extensions)
    assert "httpfs" not in {name for name, *_ in extensions}


def test_data_sql_over_s3_from_the_command_line(storage: S3Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    store_rows(storage, TYPE, listing(["A", "B"], ["1.00", "2.50"]))
    monkeypatch.setenv("SPREPORTS_STORAGE__URL", f"s3://{storage.bucket}/pre/fix")
    query = "SELECT seller_sku, price FROM listings ORDER BY price DESC"
    result = CliRunner().invoke(main, ["data", "sql", query, "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["seller_sku,price", "B,2.500000", "A,1.000000"]


def test_s3_out_of_reach_is_one_line(monkeypatch: pytest.MonkeyPatch, aws_endpoint: str) -> None:
    from tests.servers import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")  # a closed port
    monkeypatch.setenv("SPREPORTS_STORAGE__URL", "s3://nowhere-bucket/prefix")
    result = CliRunner().invoke(main, ["data", "sql", "SELECT 1"])
    assert result.exit_code == 2
    assert result.stderr == "spreports: error: cannot reach S3 to list the rows (EndpointConnectionError)\n"
