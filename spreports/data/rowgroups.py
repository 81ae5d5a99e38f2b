"""Typed batches gathered into Parquet row groups of a fixed number of rows.

The reader's blocks are small (a few thousand rows, which keeps its buffers small); a row group of
``rows_per_group`` rows is what readers prune and scan by, so batches are gathered until one is full and
written then. At most one row group's typed rows wait in memory.
"""

from __future__ import annotations

from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["DICTIONARY_LIMIT", "RowGroupWriter"]

DICTIONARY_LIMIT = 128 * 1024


class RowGroupWriter:
    """Writes record batches to a Parquet file (snappy, as DuckDB and Spark do) in row groups of ``rows_per_group`` rows."""

    def __init__(self, sink: pa.NativeFile, schema: pa.Schema, rows_per_group: int) -> None:
        self.schema = schema
        self.rows_per_group = rows_per_group
        # A column whose dictionary outgrows 128 KiB (ids, SKUs, URLs) falls back to plain encoding early:
        # its dictionary would not shrink the file, and building it costs memory and time.
        self._writer = pq.ParquetWriter(sink, schema, compression="snappy", dictionary_pagesize_limit=DICTIONARY_LIMIT)
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        """Add a batch; a row group is written once enough rows are gathered."""
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        if self._pending_rows >= self.rows_per_group:
            table = pa.Table.from_batches(self._pending, self.schema)
            self._writer.write_table(table.slice(0, self.rows_per_group), row_group_size=self.rows_per_group)
            rest = table.slice(self.rows_per_group)
            self._pending = rest.to_batches() if rest.num_rows else []
            self._pending_rows = rest.num_rows

    def close(self) -> None:
        """Write what is gathered and finish the file (its footer)."""
        if self._pending_rows:
            table = pa.Table.from_batches(self._pending, self.schema)
            self._writer.write_table(table, row_group_size=self.rows_per_group)
            self._pending, self._pending_rows = [], 0
        self._writer.close()

    def __enter__(self) -> RowGroupWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
