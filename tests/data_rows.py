"""Rows stored as the converter stores them, for the catalogue's tests of both tiers.

Parquet files in the dataset layout (``_data/report_type=<T>/seller_id=<S>/date=<D>/<doc>.parquet``) with
the provenance columns after the data columns, and manifests in the storage's index, each written
through the storage's own ``write_small`` (a local directory or S3 alike).
"""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from spreports.storage import Manifest, index_parts
from spreports.storage.base import ManifestWriting

DAY = date(2026, 11, 28)
WINDOW_START = datetime(2026, 11, 27, tzinfo=UTC)
WINDOW_END = datetime(2026, 11, 28, tzinfo=UTC)


def rows_table(
    data: dict[str, pa.Array | list[Any]],
    *,
    seller_id: str = "A1SELLER",
    marketplace_ids: tuple[str, ...] = ("ATVPDKIKX0DER",),
    report_id: str = "1001",
    document_id: str = "DOC-1",
    data_start: datetime | None = WINDOW_START,
    data_end: datetime | None = WINDOW_END,
) -> pa.Table:
    """The data columns, then the provenance columns of one document's rows (first data row: line 2)."""
    count = len(next(iter(data.values())))
    provenance = {
        "_seller_id": pa.array([seller_id] * count, pa.string()),
        "_marketplace_ids": pa.array([list(marketplace_ids)] * count, pa.list_(pa.string())),
        "_report_id": pa.array([report_id] * count, pa.string()),
        "_report_document_id": pa.array([document_id] * count, pa.string()),
        "_data_start": pa.array([data_start] * count, pa.timestamp("us", tz="UTC")),
        "_data_end": pa.array([data_end] * count, pa.timestamp("us", tz="UTC")),
        "_row_number": pa.array(range(2, count + 2), pa.int64()),
    }
    return pa.table({**data, **provenance})


def store_rows(storage: ManifestWriting, dataset: str, table: pa.Table, *, day: date = DAY) -> list[str]:
    """Write ``table`` as its document's Parquet file (seller and document from its provenance); its path parts."""
    seller_id = table.column("_seller_id")[0].as_py()
    document_id = table.column("_report_document_id")[0].as_py()
    parts = ["_data", f"report_type={dataset}", f"seller_id={seller_id}", f"date={day.isoformat()}",
             f"{document_id}.parquet"]  # fmt: skip
    body = io.BytesIO()
    pq.write_table(table, body)
    storage.write_small(parts, body.getvalue(), content_type="application/vnd.apache.parquet")
    return parts


def store_manifest(
    storage: ManifestWriting,
    *,
    seller_id: str = "A1SELLER",
    document_id: str = "DOC-1",
    report_id: str | None = "1001",
    report_type: str | None = "GET_TEST_DATA",
    data: dict[str, Any] | None = None,
    stored_at: datetime = WINDOW_END,
) -> None:
    """The index copy of a document's manifest, as the storage writes it, with the conversion's ``data`` object."""
    manifest = Manifest(
        seller_id=seller_id, report_document_id=document_id, report_id=report_id, report_type=report_type,
        report={"reportId": report_id, "reportType": report_type, "marketplaceIds": ["ATVPDKIKX0DER"],
                "dataStartTime": WINDOW_START.isoformat(), "dataEndTime": WINDOW_END.isoformat()},
        location=f"{seller_id}/{report_type}/{DAY}/{document_id}.txt", manifest_location="m",
        content_type="text/plain", compression="gzip", bytes_in=10, bytes_out=25, sha256="ab" * 32, attempts=1,
        stored_at=stored_at,
    )  # fmt: skip
    body = manifest.model_dump(mode="json")
    if data is not None:
        body["data"] = data
    storage.write_small(index_parts(seller_id, document_id), json.dumps(body, indent=2).encode(),
                        content_type="application/json")  # fmt: skip
