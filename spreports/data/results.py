"""A query's result written out: CSV, JSON lines or Parquet, streamed in batches; or its first rows.

Memory stays bounded by a batch whatever the result's size: CSV and JSON lines are written batch by
batch from DuckDB's Arrow stream, Parquet by DuckDB itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO

from spreports.data.datasets import quote_identifier

if TYPE_CHECKING:
    from pathlib import Path

    import duckdb

BATCH_ROWS = 65_536
# Types Arrow's CSV writer takes as they are; any other (lists, structs, maps, intervals, ...) is
# written as DuckDB's text for it.
_CSV_NATIVE = frozenset(
    {
        "boolean", "tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint", "uinteger",
        "ubigint", "float", "double", "decimal", "varchar", "date", "time", "timestamp", "timestamp_s",
        "timestamp_ms", "timestamp_ns", "timestamp with time zone", "blob", "null",
    }
)  # fmt: skip


def write_csv(relation: duckdb.DuckDBPyRelation, sink: BinaryIO) -> int:
    """Write the result as CSV with a header line to ``sink``; return the number of rows."""
    import pyarrow.csv as pacsv

    # By position (#n), not name: a result may have two columns of one name (``SELECT a.x, b.x``).
    columns = [
        f"#{position} AS {quote_identifier(name)}"
        if str(kind.id) in _CSV_NATIVE
        else f"CAST(#{position} AS VARCHAR) AS {quote_identifier(name)}"
        for position, (name, kind) in enumerate(zip(relation.columns, relation.types, strict=True), start=1)
    ]
    reader = relation.project(", ".join(columns)).to_arrow_reader(BATCH_ROWS)
    rows = 0
    with pacsv.CSVWriter(sink, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def write_json_lines(relation: duckdb.DuckDBPyRelation, sink: BinaryIO) -> int:
    """Write the result as JSON lines (one object per row, DuckDB's JSON of each value); return the rows."""
    alias = "_spreports_row"
    reader = relation.set_alias(alias).project(f"to_json({alias})").to_arrow_reader(BATCH_ROWS)
    rows = 0
    for batch in reader:
        lines = batch.column(0).to_pylist()
        if lines:
            sink.write(("\n".join(lines) + "\n").encode("utf-8"))
        rows += len(lines)
    return rows


def write_parquet(relation: duckdb.DuckDBPyRelation, path: Path) -> None:
    """Write the result to a Parquet file at ``path`` (replaced if it exists)."""
    relation.write_parquet(str(path))


def first_rows(relation: duckdb.DuckDBPyRelation, limit: int) -> tuple[list[str], list[tuple[object, ...]], bool]:
    """The column names, up to ``limit`` rows, and whether the result has more."""
    rows = relation.limit(limit + 1).fetchall()
    return list(relation.columns), rows[:limit], len(rows) > limit
