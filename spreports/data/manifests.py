"""The ``documents`` table: one row per stored document, read from the manifests' index copies.

Every stored document has its manifest in the index (``_index/<seller>/<document>.manifest.json``, the
storage's done-marker), so the index lists each document once, whatever day it was stored on. The
manifests are read as the JSON they are, not through the storage's model: the ``data`` object that the
conversion adds is read from the same file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from spreports.errors import ServiceUnavailable, StorageError
from spreports.storage import INDEX_DIR, LocalStorage, S3Storage, Storage

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

MANIFEST_SUFFIX = ".manifest.json"
# Manifests are small: on S3 the time goes into round trips, so several are read at once.
S3_READERS = 16

Getter = Callable[[dict[str, Any]], object]


def _text(*path: str) -> Getter:
    def get(manifest: dict[str, Any]) -> object:
        value = _at(manifest, path)
        return value if isinstance(value, str) else None

    return get


def _integer(*path: str) -> Getter:
    def get(manifest: dict[str, Any]) -> object:
        value = _at(manifest, path)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return get


def _timestamp(*path: str) -> Getter:
    def get(manifest: dict[str, Any]) -> object:
        value = _at(manifest, path)
        if not isinstance(value, str):
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

    return get


def _texts(*path: str) -> Getter:
    def get(manifest: dict[str, Any]) -> object:
        value = _at(manifest, path)
        return [item for item in value if isinstance(item, str)] if isinstance(value, list) else None

    return get


def _integers(*path: str) -> Getter:
    def get(manifest: dict[str, Any]) -> object:
        value = _at(manifest, path)
        if not isinstance(value, list):
            return None
        return [item for item in value if isinstance(item, int) and not isinstance(item, bool)]

    return get


def _at(manifest: dict[str, Any], path: tuple[str, ...]) -> object:
    node: object = manifest
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


#: The columns of ``documents``: name, Arrow type name, and where the manifest has the value.
COLUMNS: tuple[tuple[str, str, Getter], ...] = (
    ("seller_id", "string", _text("seller_id")),
    ("report_type", "string", _text("report_type")),
    ("report_id", "string", _text("report_id")),
    ("report_document_id", "string", _text("report_document_id")),
    ("processing_status", "string", _text("processing_status")),
    ("marketplace_ids", "strings", _texts("report", "marketplaceIds")),
    ("data_start", "timestamp", _timestamp("report", "dataStartTime")),
    ("data_end", "timestamp", _timestamp("report", "dataEndTime")),
    ("report_created_at", "timestamp", _timestamp("report", "createdTime")),
    ("stored_at", "timestamp", _timestamp("stored_at")),
    ("sha256", "string", _text("sha256")),
    ("bytes_in", "integer", _integer("bytes_in")),
    ("bytes_out", "integer", _integer("bytes_out")),
    ("compression", "string", _text("compression")),
    ("content_type", "string", _text("content_type")),
    ("source_charset", "string", _text("source_charset")),
    ("replaced_chars", "integer", _integer("replaced_chars")),
    ("location", "string", _text("location")),
    ("supersedes", "string", _text("supersedes")),
    ("error_reason", "string", _text("error_reason")),
    ("data_path", "string", _text("data", "path")),
    ("data_rows", "integer", _integer("data", "rows")),
    ("rows_rejected", "integer", _integer("data", "rows_rejected")),
    ("values_unparsed", "integer", _integer("data", "values_unparsed")),
    ("rejected_lines", "integers", _integers("data", "rejected_lines")),
    ("data_schema", "string", _text("data", "schema")),
    ("converted_at", "timestamp", _timestamp("data", "converted_at")),
)


def documents_schema() -> pa.Schema:
    """The Arrow schema of the ``documents`` table."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "strings": pa.list_(pa.string()),
        "integers": pa.list_(pa.int64()),
        "integer": pa.int64(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    return pa.schema([(name, types[kind]) for name, kind, _ in COLUMNS])


def documents_table(manifests: Iterable[dict[str, Any]]) -> pa.Table:
    """The ``documents`` table of these manifests (a value of the wrong JSON type is null, never an error)."""
    import pyarrow as pa

    columns: dict[str, list[object]] = {name: [] for name, _, _ in COLUMNS}
    for manifest in manifests:
        for name, _, get in COLUMNS:
            columns[name].append(get(manifest))
    return pa.table(columns, schema=documents_schema())


def read_manifests(storage: Storage) -> list[dict[str, Any]]:
    """Every manifest of the storage's index, as JSON objects (an unreadable one is logged and left out)."""
    if isinstance(storage, LocalStorage):
        return _local_manifests(storage)
    if isinstance(storage, S3Storage):
        return _s3_manifests(storage)
    raise StorageError(f"cannot list the documents of a {type(storage).__name__}")


def _parse(body: bytes, name: str) -> dict[str, Any] | None:
    try:
        manifest = json.loads(body)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict):
        log.warning("manifest %s is not a JSON object; left out of documents", name)
        return None
    return manifest


def _local_manifests(storage: LocalStorage) -> list[dict[str, Any]]:
    manifests = []
    # Written whole (temporary name, then rename): a name ending in .manifest.json is always complete.
    for path in sorted(storage.root.glob(f"{INDEX_DIR}/*/*{MANIFEST_SUFFIX}")):
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StorageError(f"cannot read the manifest index: {exc.strerror}") from None
        if (manifest := _parse(body, path.name)) is not None:
            manifests.append(manifest)
    return manifests


def _s3_manifests(storage: S3Storage) -> list[dict[str, Any]]:
    from botocore.exceptions import BotoCoreError, ClientError

    prefix = storage.key([INDEX_DIR]) + "/"

    def read(key: str) -> dict[str, Any] | None:
        try:
            body = storage.client.get_object(Bucket=storage.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None  # removed since the listing
            raise
        return _parse(body, key.rsplit("/", 1)[-1])

    try:
        keys = [
            item["Key"]
            for page in storage.client.get_paginator("list_objects_v2").paginate(Bucket=storage.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
            if item["Key"].endswith(MANIFEST_SUFFIX)
        ]
        with ThreadPoolExecutor(max_workers=S3_READERS, thread_name_prefix="manifests") as pool:
            found = list(pool.map(read, sorted(keys)))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise StorageError(f"S3 refused reading the manifest index ({code})") from None
    except BotoCoreError as exc:
        raise ServiceUnavailable(f"cannot reach S3 for the manifest index ({type(exc).__name__})") from None
    return [manifest for manifest in found if manifest is not None]
