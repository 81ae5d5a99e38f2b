"""A query's result written out: CSV, JSON lines or Parquet, streamed; or its first rows.

Memory stays bounded whatever the result's size. CSV and Parquet are DuckDB's own writers (CSV is
several times faster there than through Arrow's); to a stream (stdout) DuckDB writes CSV into a pipe
that this process copies on, so the stream is never reopened (a shell's ``>>`` keeps its content).
JSON lines are DuckDB's JSON of each row, batch by batch from its Arrow stream.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    import duckdb

BATCH_ROWS = 65_536


def write_csv(relation: duckdb.DuckDBPyRelation, target: Path | BinaryIO) -> None:
    """Write the result as CSV with a header line to a file (replaced if it exists) or a binary stream."""
    if isinstance(target, Path):
        relation.write_csv(str(target), header=True)
        return
    read_end, write_end = os.pipe()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            # /dev/fd/N opens the pipe itself; a temporary file and a rename would not reach it.
            relation.write_csv(f"/dev/fd/{write_end}", header=True, use_tmp_file=False)
        except BaseException as exc:
            failure.append(exc)
        finally:
            os.close(write_end)

    producer = threading.Thread(target=produce, name="csv-writer", daemon=True)
    producer.start()
    try:
        with open(read_end, "rb", closefd=True) as source:
            shutil.copyfileobj(source, target, 2**20)
    finally:
        # Closed above (or by a failed copy, the reader gone): DuckDB's next write fails and it stops.
        producer.join()
    if failure and not isinstance(failure[0], BrokenPipeError):
        raise failure[0]


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
