"""A document stored on S3 (moto's server) converted through pyarrow's S3 file system, read back by DuckDB.

The same code as a local directory: the raw document is read from the bucket, the Parquet file is
written under a hidden name and copied to its place, the dataset schema and the manifest's data section
land beside it, and nothing temporary is left in the bucket. DuckDB reads the dataset through pyarrow
(no httpfs extension: autoloading and autoinstalling are turned off).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import boto3
import duckdb
import pyarrow.dataset as ds
import pytest

from spreports.data.convert import convert_document
from spreports.data.filesystem import open_root
from spreports.settings import Settings
from spreports.storage import DocumentKey, Manifest, open_storage

TYPE = "GET_SOMETHING_NEW_DATA"


@pytest.fixture
def settings(aws_endpoint: str) -> Settings:
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return Settings(storage={"url": f"s3://{bucket}/pre/fix"})  # type: ignore[arg-type]


def test_a_document_on_s3_converts_and_reads_back_without_extensions(settings: Settings) -> None:
    storage = open_storage(settings)
    key = DocumentKey(seller_id="A1SELLER", report_document_id="DOC-1", report_type=TYPE, day=date(2026, 11, 28))
    writer = storage.open_document(key, "txt")
    writer.write(b"sku\tprice\nA\t1.50\nbroken line\tx\ty\nB\t2.25\n")
    location = writer.commit()
    manifest = Manifest(
        seller_id="A1SELLER", report_document_id="DOC-1", report_id="R1", report_type=TYPE, location=location,
        manifest_location=location.replace(".txt", ".manifest.json"), content_type="text/plain",
        compression="none", bytes_in=1, bytes_out=1, sha256="0" * 64, attempts=1,
        stored_at=datetime(2026, 11, 28, tzinfo=UTC), report={"dataStartTime": "2026-11-27T00:00:00Z"},
    )  # fmt: skip
    storage.write_manifest(key, manifest)

    conversion = convert_document(storage, manifest, settings=settings)

    assert conversion is not None and (conversion.rows, conversion.rejected_lines) == (2, (3,))
    assert storage.find("A1SELLER", "DOC-1").data["path"] == conversion.path  # type: ignore[union-attr]
    bucket, prefix = settings.storage.url.removeprefix("s3://").split("/", 1)
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/_data/")["Contents"]]
    assert sorted(keys) == [f"{prefix}/_data/_schemas/{TYPE}.json", f"{prefix}/{conversion.path}"]

    root = open_root(settings)
    dataset = ds.dataset(root.path(["_data", f"report_type={TYPE}"]), filesystem=root.filesystem, format="parquet",
                         partitioning="hive")  # fmt: skip
    connection = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    connection.register("rows", dataset)
    assert connection.sql("SELECT seller_id, sku, price::VARCHAR FROM rows ORDER BY sku").fetchall() == [
        ("A1SELLER", "A", "1.500000"),
        ("A1SELLER", "B", "2.250000"),
    ]
