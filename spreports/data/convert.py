"""A stored document converted to typed Parquet rows, streamed: read a block, type it, write a row group.

``convert_document`` is the entry point (the ``data`` queue's task calls it): it finds the declared schema
of the document's report type, or infers one, converts each of its tables (``convert_file``) into the
Hive layout of :mod:`spreports.data.layout`, and adds a ``data`` section to the document's manifest.
Memory stays flat whatever the document's size: one block of text and its typed copy at a time.

Types come from the declared schema; for a type without one (or a column a document has beyond it),
the first block decides (:func:`spreports.data.parse.infer_type`). A later value that does not fit a
type inferred from the first block becomes null and is counted in ``values_unparsed``, like any value
that does not parse: the row is kept, the raw document keeps the text, and the file is never rewritten
mid-stream (``spreports data rebuild`` converts again). Across documents a conflicting type widens the
dataset's column to string (:mod:`spreports.data.evolve`).

A file becomes visible only whole: it is written under a hidden temporary name beside its final one and
renamed (locally an atomic rename, on S3 a server-side copy), and removed when anything fails.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import chain
from typing import Any, Literal

import pyarrow as pa
import pyarrow.fs as pafs

from spreports.data.evolve import DatasetColumn, arrow_schema, from_json, merge, normalise_name, to_json, unique_names
from spreports.data.filesystem import DataRoot, open_root
from spreports.data.layout import data_day, moment, parquet_parts, schema_parts, stored_day, temporary_name
from spreports.data.parse import ARROW_TYPES, infer_type, parse_column
from spreports.data.records import find_record_path, json_batches, json_sources, xml_batches
from spreports.data.rowgroups import RowGroupWriter
from spreports.data.schemas import DeclaredColumn, DeclaredSchema, schema_for
from spreports.data.tsv import RawBatch, TsvReader
from spreports.errors import DocumentRejected
from spreports.settings import Settings
from spreports.storage import DocumentKey, Manifest, Storage

__all__ = [
    "PROVENANCE",
    "ROW_GROUP_ROWS",
    "Conversion",
    "Plan",
    "Provenance",
    "convert_document",
    "convert_file",
    "plans_for",
]

log = logging.getLogger(__name__)

#: Rows per Parquet row group: 32,768 keeps the group gathered, the one being encoded and the writer's
#: buffers within the memory bound (benchmarks/README.md); readers scan and prune by it all the same.
ROW_GROUP_ROWS = 32_768
#: Rejected line numbers kept in the manifest (the count has them all).
REJECTED_LINES_KEPT = 10
DocumentFormat = Literal["tsv", "json", "xml"]

#: The provenance columns, after the data columns in every file.
PROVENANCE = pa.schema(
    [
        pa.field("_seller_id", pa.utf8()),
        pa.field("_marketplace_ids", pa.list_(pa.utf8())),
        pa.field("_report_id", pa.utf8()),
        pa.field("_report_document_id", pa.utf8()),
        pa.field("_data_start", ARROW_TYPES["timestamp"]),
        pa.field("_data_end", ARROW_TYPES["timestamp"]),
        pa.field("_row_number", pa.int64()),
    ]
)


@dataclass(frozen=True)
class Plan:
    """How to read one table of a document: its dataset, format, record path and declared columns (or none)."""

    dataset: str
    format: DocumentFormat
    record_path: tuple[str, ...] = ()
    columns: tuple[DeclaredColumn, ...] | None = None

    @property
    def declared(self) -> bool:
        """Whether the columns come from a declared schema (else they are inferred from the document)."""
        return self.columns is not None


@dataclass(frozen=True)
class Provenance:
    """Where every row of a document comes from."""

    seller_id: str
    report_document_id: str
    report_id: str | None = None
    marketplace_ids: tuple[str, ...] = ()
    data_start: datetime | None = None
    data_end: datetime | None = None

    @classmethod
    def of(cls, manifest: Manifest) -> Provenance:
        """A stored document's provenance, from its manifest (the report's JSON inside it)."""
        report = manifest.report or {}
        marketplaces = report.get("marketplaceIds") or []
        return cls(
            seller_id=manifest.seller_id,
            report_document_id=manifest.report_document_id,
            report_id=manifest.report_id or report.get("reportId"),
            marketplace_ids=tuple(str(m) for m in marketplaces),
            data_start=moment(report.get("dataStartTime")),
            data_end=moment(report.get("dataEndTime")),
        )


@dataclass(frozen=True)
class Conversion:
    """What converting one table of a document gave: where its file is and what was counted on the way."""

    dataset: str
    path: str
    rows: int
    rows_rejected: int
    values_unparsed: int
    rejected_lines: tuple[int, ...]
    schema: Literal["declared", "inferred"]
    converted_at: datetime
    #: The other tables of the same document (Sales and Traffic by date and by ASIN), if any.
    tables: tuple[Conversion, ...] = field(default=())

    def manifest_data(self) -> dict[str, Any]:
        """The manifest's ``data`` section."""
        data: dict[str, Any] = {
            "path": self.path,
            "rows": self.rows,
            "rows_rejected": self.rows_rejected,
            "values_unparsed": self.values_unparsed,
            "rejected_lines": list(self.rejected_lines),
            "schema": self.schema,
            "converted_at": self.converted_at.isoformat(),
        }
        if self.tables:
            data["tables"] = {table.dataset: table.manifest_data() for table in self.tables}
        return data


def plans_for(report_type: str, schema: DeclaredSchema | None, location: str) -> list[Plan]:
    """The tables to write for a document: each declared table, or one inferred from the document."""
    if schema is not None:
        return [Plan(t.dataset, schema.format, t.record_path, t.columns) for t in schema.all_tables()]
    suffix = location.rsplit(".", 1)[-1].lower()
    document_format: DocumentFormat = "json" if suffix == "json" else "xml" if suffix == "xml" else "tsv"
    return [Plan(report_type, document_format)]


def convert_document(
    storage: Storage, manifest: Manifest, *, settings: Settings, root: DataRoot | None = None
) -> Conversion | None:
    """Convert a stored document to Parquet and record the result in its manifest's ``data`` section.

    Returns None, converting nothing, for a document that holds no rows (a FATAL report's error
    document) or one whose format cannot be read without a declared schema (XML).
    """
    if manifest.processing_status != "DONE" or not manifest.report_type:
        return None
    plans = plans_for(manifest.report_type, schema_for(manifest.report_type), manifest.location)
    if plans[0].format == "xml" and not plans[0].declared:
        log.info(
            "document %s: XML of a report type with no declared schema; not converted", manifest.report_document_id
        )
        return None
    root = root or open_root(settings)
    provenance = Provenance.of(manifest)
    day = data_day(manifest)
    source = root.document_path(manifest.location)
    done = [
        convert_file(
            root,
            source,
            plan,
            provenance,
            parquet_parts(plan.dataset, manifest.seller_id, day, manifest.report_document_id),
        )
        for plan in plans
    ]
    conversion = replace(done[0], tables=tuple(done[1:]))
    key = DocumentKey(
        seller_id=manifest.seller_id,
        report_document_id=manifest.report_document_id,
        report_type=manifest.report_type,
        day=stored_day(manifest) or manifest.stored_at.date(),
    )
    storage.write_manifest(key, manifest.model_copy(update={"data": conversion.manifest_data()}))
    return conversion


def convert_file(root: DataRoot, source: str, plan: Plan, provenance: Provenance, target: list[str]) -> Conversion:
    """Convert one table of the document at ``source`` into the Parquet file at ``target`` (parts under the root)."""
    reading = _Reading.open(root.filesystem, source, plan)
    batches = iter(reading.batches)
    first = next(batches, None)
    document = _document_columns(plan, reading.sources, first)
    dataset = _update_dataset_schema(root, plan.dataset, [column for column, _ in document])
    positions = {column.name: index for column, index in document}
    formats = {c.name: (c.type, c.format) for c in plan.columns or ()}
    schema = pa.unify_schemas([arrow_schema(dataset), PROVENANCE])
    final = root.path(target)
    temporary = root.path([*target[:-1], temporary_name(target[-1], uuid.uuid4().hex)])
    if not root.is_s3:
        root.filesystem.create_dir(final.rsplit("/", 1)[0], recursive=True)
    rows = unparsed = 0
    constants = _Constants(provenance)
    try:
        with (
            root.filesystem.open_output_stream(temporary) as sink,
            RowGroupWriter(sink, schema, ROW_GROUP_ROWS) as writer,
        ):
            for batch in chain([first] if first is not None else [], batches):
                arrays: list[pa.Array] = []
                for column in dataset:
                    index = positions.get(column.name)
                    if index is None:
                        arrays.append(pa.nulls(batch.num_rows, ARROW_TYPES[column.type]))
                        continue
                    declared_type, declared_formats = formats.get(column.name, (None, None))
                    parsed = parse_column(
                        batch.columns[index], column.type, declared_formats if declared_type == column.type else None
                    )
                    arrays.append(parsed.values)
                    unparsed += parsed.unparsed
                arrays.extend(constants.arrays(batch))
                writer.write(pa.RecordBatch.from_arrays(arrays, schema=schema))
                rows += batch.num_rows
        root.publish(temporary, final)
    except BaseException:
        root.remove(temporary)
        raise
    rejected = reading.rejected_lines()
    return Conversion(
        dataset=plan.dataset,
        path="/".join(target),
        rows=rows,
        rows_rejected=len(rejected),
        values_unparsed=unparsed,
        rejected_lines=tuple(rejected[:REJECTED_LINES_KEPT]),
        schema="declared" if plan.declared else "inferred",
        converted_at=datetime.now(UTC),
    )


@dataclass
class _Reading:
    """A document being read: its sources (header fields or paths), its text batches, its rejected lines."""

    sources: list[str]
    batches: Iterator[RawBatch]
    tsv: TsvReader | None = None

    @classmethod
    def open(cls, filesystem: pafs.FileSystem, path: str, plan: Plan) -> _Reading:
        if plan.format == "tsv":
            reader = TsvReader(filesystem, path)
            return cls(reader.sources, reader.batches(), reader)
        record_path = plan.record_path
        if plan.columns is not None:
            sources = [column.source for column in plan.columns]
        elif plan.format == "json":
            record_path = record_path or find_record_path(filesystem, path)
            sources = json_sources(filesystem, path, record_path)
        else:
            raise DocumentRejected("an XML document needs a declared schema")
        read = json_batches if plan.format == "json" else xml_batches
        return cls(sources, read(filesystem, path, record_path, sources))

    def rejected_lines(self) -> list[int]:
        return self.tsv.rejected_lines if self.tsv is not None else []


def _document_columns(plan: Plan, sources: list[str], first: RawBatch | None) -> list[tuple[DatasetColumn, int | None]]:
    """The document's columns with where each is in its batches (None: declared but absent from it)."""
    declared = {column.source: column for column in plan.columns or ()}
    taken = {column.name for column in declared.values()}
    extra = [index for index, source in enumerate(sources) if source not in declared]
    names = iter(unique_names([*taken, *(normalise_name(sources[i]) for i in extra)])[len(taken) :])
    position = {source: index for index, source in reversed(list(enumerate(sources)))}
    document: list[tuple[DatasetColumn, int | None]] = [
        (DatasetColumn(c.name, c.type, c.source), position.get(c.source)) for c in plan.columns or ()
    ]
    for index in extra:
        # Beyond the declared schema (or with none): the first block says what the column holds.
        kind = infer_type(first.columns[index]) if first is not None else "string"
        document.append((DatasetColumn(next(names), kind, sources[index]), index))
    return document


def _update_dataset_schema(root: DataRoot, dataset: str, columns: list[DatasetColumn]) -> list[DatasetColumn]:
    """The dataset schema with this document's columns in, written back when it grew or widened."""
    path = root.path(schema_parts(dataset))
    existing = _read_dataset_schema(root.filesystem, path)
    merged = merge(existing, columns)
    if merged != existing:
        _write_whole(root, path, to_json(merged))
    return merged


def _read_dataset_schema(filesystem: pafs.FileSystem, path: str) -> list[DatasetColumn]:
    try:
        with filesystem.open_input_stream(path) as stream:
            return from_json(stream.read())
    except FileNotFoundError:
        return []


def _write_whole(root: DataRoot, path: str, body: bytes) -> None:
    """A small file written whole: a temporary name beside it, then renamed over it."""
    directory, name = path.rsplit("/", 1)
    temporary = f"{directory}/{temporary_name(name, uuid.uuid4().hex)}"
    if not root.is_s3:
        root.filesystem.create_dir(directory, recursive=True)
    try:
        with root.filesystem.open_output_stream(temporary) as sink:
            sink.write(body)
        root.publish(temporary, path)
    except BaseException:
        root.remove(temporary)
        raise


class _Constants:
    """The provenance columns of a batch: the same values on every row, and the row numbers.

    Built once for the largest batch seen and sliced (free) for each batch, rather than repeated per batch.
    """

    def __init__(self, provenance: Provenance) -> None:
        self._built: list[pa.Array] = []
        self.values = [
            pa.scalar(provenance.seller_id, pa.utf8()),
            pa.scalar(list(provenance.marketplace_ids), pa.list_(pa.utf8())),
            pa.scalar(provenance.report_id, pa.utf8()),
            pa.scalar(provenance.report_document_id, pa.utf8()),
            pa.scalar(provenance.data_start, ARROW_TYPES["timestamp"]),
            pa.scalar(provenance.data_end, ARROW_TYPES["timestamp"]),
        ]

    def arrays(self, batch: RawBatch) -> list[pa.Array]:
        rows = batch.num_rows
        if not self._built or len(self._built[0]) < rows:
            self._built = [
                pa.repeat(value, max(rows, 2 * len(self._built[0]) if self._built else rows)) for value in self.values
            ]
        return [*(column.slice(0, rows) for column in self._built), batch.row_numbers]
