"""Where each dataset's rows are, and how DuckDB reads them: local files by glob, or an Arrow dataset on S3.

A dataset is a report type's rows (or an extra table's, under its own dataset name), Hive-partitioned::

    <root>/_data/report_type=<dataset>/seller_id=<S>/date=<YYYY-MM-DD>/<reportDocumentId>.parquet

Files of one dataset may differ (a column added later, a type widened to string): they are read as one
by column name, a column missing from a file is null there, and a column whose types differ between
files is read as the widest of them (string when nothing else holds both).

Each dataset reads as its files' columns, then the partition columns ``seller_id`` and ``date``. A file
column of the same name as a partition shadows it (its values would otherwise be replaced by the
path's, which Hive readers do silently): that partition column is then left out of the dataset.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from spreports.errors import ServiceUnavailable, StorageError
from spreports.storage import LocalStorage, S3Storage, Storage

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

DATA_DIR = "_data"
#: The partition naming the dataset (the report type, or an extra table's dataset name).
DATASET_PARTITION = "report_type"
#: The partitions under a dataset's folder, in path order.
PARTITIONS = ("seller_id", "date")
PARQUET_GLOB = "*/*/*.parquet"
# A file's footer is one or two small reads: on S3 the time goes into round trips.
S3_FOOTER_READERS = 16
# Characters DuckDB's glob expands: a storage path holding one could match other files.
_GLOB_CHARACTERS = frozenset("*?[]{}")


@dataclass(frozen=True)
class Dataset:
    """One dataset as DuckDB reads it."""

    name: str
    #: A FROM-clause item yielding the files' columns and the partition columns kept.
    source: str
    #: The files' own columns, in order (the union over the files).
    columns: tuple[str, ...]
    #: The partition columns the dataset adds after them (those no file column shadows).
    partitions: tuple[str, ...]


def quote_identifier(name: str) -> str:
    """``name`` as a SQL identifier (any characters)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """``value`` as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def find_datasets(storage: Storage, connection: duckdb.DuckDBPyConnection) -> list[Dataset]:
    """Every dataset with at least one file, by name; S3 datasets are registered on ``connection``."""
    if isinstance(storage, LocalStorage):
        return list(_local_datasets(storage, connection))
    if isinstance(storage, S3Storage):
        return list(_s3_datasets(storage, connection))
    raise StorageError(f"cannot read rows from a {type(storage).__name__}")


def _dataset_name(folder: str) -> str | None:
    """The dataset of a ``report_type=<escaped name>`` folder, or None for another folder."""
    prefix = f"{DATASET_PARTITION}="
    return unquote(folder[len(prefix) :]) if folder.startswith(prefix) and len(folder) > len(prefix) else None


def _local_datasets(storage: LocalStorage, connection: duckdb.DuckDBPyConnection) -> Iterator[Dataset]:
    data = storage.root / DATA_DIR
    if not data.is_dir():
        return
    if _GLOB_CHARACTERS & set(str(data)):
        raise StorageError("the storage directory's path holds a glob character (*?[]{}): rows cannot be read there")
    for entry in sorted(os.scandir(data), key=lambda entry: entry.name):
        name = _dataset_name(entry.name)
        if name is None or not entry.is_dir():
            continue
        folder = data / entry.name
        if next(folder.glob(PARQUET_GLOB), None) is None:
            continue  # created, no file finished yet
        files = quote_literal(str(folder / PARQUET_GLOB))
        described = connection.sql(
            f"DESCRIBE SELECT * FROM read_parquet({files}, union_by_name = true, hive_partitioning = false)"
        ).fetchall()
        columns = tuple(str(row[0]) for row in described)
        kept = tuple(partition for partition in PARTITIONS if partition not in columns)
        yield Dataset(name, _local_source(files, kept), columns, kept)


def _local_source(files: str, kept: tuple[str, ...]) -> str:
    if kept == PARTITIONS:
        # Hive partitioning: a filter on seller_id or date skips whole folders.
        return (
            f"read_parquet({files}, union_by_name = true, hive_partitioning = true, "
            "hive_types = {'seller_id': VARCHAR, 'date': DATE}, hive_types_autocast = false)"
        )
    # A file column shadows a partition: the kept ones are taken from each file's path instead.
    path = quote_identifier("_spreports_file")
    derived = [
        f"url_decode(regexp_extract({path}, '[/\\\\]seller_id=([^/\\\\]*)[/\\\\]', 1)) AS seller_id"
        if partition == "seller_id"
        else f"TRY_CAST(regexp_extract({path}, '[/\\\\]date=([^/\\\\]*)[/\\\\]', 1) AS DATE) AS date"
        for partition in kept
    ]
    return (
        f"(SELECT * EXCLUDE ({path}){''.join(', ' + column for column in derived)} FROM read_parquet("
        f"{files}, union_by_name = true, hive_partitioning = false, filename = '_spreports_file'))"
    )


def _s3_datasets(storage: S3Storage, connection: duckdb.DuckDBPyConnection) -> Iterator[Dataset]:
    from botocore.exceptions import BotoCoreError, ClientError

    from spreports.data.arrow_s3 import arrow_filesystem

    prefix = storage.key([DATA_DIR]) + "/"
    try:
        pages = storage.client.get_paginator("list_objects_v2").paginate(
            Bucket=storage.bucket, Prefix=prefix, Delimiter="/"
        )
        folders = [
            item["Prefix"][len(prefix) :].rstrip("/") for page in pages for item in page.get("CommonPrefixes", [])
        ]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise StorageError(f"S3 refused listing the rows ({code})") from None
    except BotoCoreError as exc:
        raise ServiceUnavailable(f"cannot reach S3 to list the rows ({type(exc).__name__})") from None
    filesystem = None
    for index, folder in enumerate(sorted(folders)):
        name = _dataset_name(folder)
        if name is None:
            continue
        filesystem = filesystem or arrow_filesystem(storage)
        found = arrow_dataset(filesystem, f"{storage.bucket}/{prefix}{folder}")
        if found is None:
            continue
        dataset, columns, kept = found
        # Registered objects live as long as the connection; the views name them.
        registered = f"_spreports_rows_{index}"
        connection.register(registered, dataset)
        yield Dataset(name, quote_identifier(registered), columns, kept)


def arrow_dataset(
    filesystem: pafs.FileSystem, base: str
) -> tuple[pads.Dataset, tuple[str, ...], tuple[str, ...]] | None:
    """The Parquet files under ``base`` as one Arrow dataset, its file columns and the partitions kept."""
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq
    from pyarrow.fs import FileSelector, FileType

    try:
        found = filesystem.get_file_info(FileSelector(base, recursive=True))
        # Finished files only: a conversion writes under a hidden temporary name, then renames.
        paths = sorted(
            info.path
            for info in found
            if info.type == FileType.File and info.path.endswith(".parquet") and not info.base_name.startswith(".")
        )
        if not paths:
            return None
        with ThreadPoolExecutor(max_workers=S3_FOOTER_READERS, thread_name_prefix="footers") as pool:
            schemas = list(pool.map(lambda path: pq.read_schema(path, filesystem=filesystem), paths))
    except OSError as exc:
        raise ServiceUnavailable(f"cannot read the rows on S3 ({_aws_error(exc)})") from None
    files = unify(schemas)
    kept = tuple(partition for partition in PARTITIONS if partition not in files.names)
    types = {"seller_id": pa.string(), "date": pa.date32()}
    partitioning = pads.partitioning(pa.schema([(name, types[name]) for name in kept]), flavor="hive")
    factory = pads.FileSystemDatasetFactory(
        filesystem,
        paths,
        pads.ParquetFileFormat(),
        pads.FileSystemFactoryOptions(partition_base_dir=base, partitioning=partitioning),
    )
    schema = pa.schema([*files, *(pa.field(name, types[name]) for name in kept)])
    return factory.finish(schema=schema), tuple(files.names), kept


def unify(schemas: list[pa.Schema]) -> pa.Schema:
    """One schema holding every file's columns, in first-seen order, each read as the widest of its types.

    Types Arrow promotes (int64 and float64, a decimal's precision, null and anything) are promoted;
    any other pair of types becomes string, as the dataset's own schema widens a conflict.
    """
    import pyarrow as pa

    fields: dict[str, pa.Field] = {}
    for schema in schemas:
        for field in schema:
            seen = fields.get(field.name)
            if seen is None:
                fields[field.name] = field.with_nullable(True)
            elif seen.type != field.type:
                try:
                    merged = pa.unify_schemas(
                        [pa.schema([seen]), pa.schema([field])], promote_options="permissive"
                    ).field(field.name)
                except (pa.ArrowInvalid, pa.ArrowTypeError, NotImplementedError):
                    merged = seen.with_type(pa.string())
                fields[field.name] = merged.with_nullable(True)
    return pa.schema(list(fields.values()))


def _aws_error(exc: OSError) -> str:
    """The AWS error code pyarrow names, or the exception's type: its text can hold the endpoint and keys."""
    found = re.search(r"AWS Error ([A-Z_]+)", str(exc))
    return found.group(1) if found else type(exc).__name__
