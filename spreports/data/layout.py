"""Where the typed twins live under the storage root, and the day a document's rows belong to.

Hive-partitioned, local directory and S3 alike, so that any engine reads it as one dataset::

    _data/report_type=<T>/seller_id=<S>/date=<YYYY-MM-DD>/<reportDocumentId>.parquet
    _data/_schemas/<T>.json                                    the dataset schema of a report type

``date`` is the data's own day (the report's ``dataStartTime``, in UTC), so a backfill's rows land where
their data belongs; a report without a data start falls back to the day folder the raw document is in.
Partition values are escaped like every other path part of the storage (``%XX``, as Hive escapes them).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from spreports.storage.layout import Manifest, safe_part, stored_day

__all__ = ["DATA_DIR", "SCHEMAS_DIR", "data_day", "parquet_parts", "schema_parts", "stored_day", "temporary_name"]

DATA_DIR = "_data"
SCHEMAS_DIR = "_schemas"


def parquet_parts(dataset: str, seller_id: str, day: date, report_document_id: str) -> list[str]:
    """The relative path parts of one document's Parquet file."""
    return [
        DATA_DIR,
        f"report_type={safe_part(dataset, what='report type')}",
        f"seller_id={safe_part(seller_id, what='seller id')}",
        f"date={day.isoformat()}",
        f"{safe_part(report_document_id, what='report document id')}.parquet",
    ]


def schema_parts(dataset: str) -> list[str]:
    """The relative path parts of a dataset's schema file."""
    return [DATA_DIR, SCHEMAS_DIR, f"{safe_part(dataset, what='report type')}.json"]


def temporary_name(name: str, token: str) -> str:
    """A name beside ``name`` that readers skip (a leading ``.``, no ``.parquet`` ending) until it is renamed."""
    return f".{name}.{token}.tmp"


def data_day(manifest: Manifest) -> date:
    """The day a document's rows belong to: the report's data start (UTC), else the day it was stored under."""
    start = moment((manifest.report or {}).get("dataStartTime"))
    if start is not None:
        return start.date()
    return stored_day(manifest) or manifest.stored_at.astimezone(UTC).date()


def moment(value: object) -> datetime | None:
    """An ISO 8601 time from a report's JSON (``dataStartTime``), in UTC; None when absent or not a time."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
