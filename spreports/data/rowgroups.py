"""Typed batches gathered into Parquet row groups, encoded and written by a thread of their own.

The reader's blocks are small (a few thousand rows, which keeps its buffers small); a row group of
``rows_per_group`` rows is what readers prune and scan by, so batches are gathered until one is full. Its
encoding (dictionaries, statistics, snappy) then runs in a writer thread while the caller parses and types
the next blocks: both sides run without the GIL, so on two cores they overlap. One row group waits in
the hand-over at most, so memory stays bounded however far the reader could run ahead.
"""

from __future__ import annotations

import queue
import threading
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["DICTIONARY_LIMIT", "RowGroupWriter"]

DICTIONARY_LIMIT = 128 * 1024
_DONE = object()
_POLL_SECONDS = 0.2


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
        self._handoff: queue.Queue[object] = queue.Queue(maxsize=1)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="spreports-parquet-writer", daemon=True)
        self._thread.start()

    def write(self, batch: pa.RecordBatch) -> None:
        """Add a batch; a full row group goes to the writer thread."""
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        if self._pending_rows >= self.rows_per_group:
            table = pa.Table.from_batches(self._pending, self.schema)
            self._hand_over(table.slice(0, self.rows_per_group))
            rest = table.slice(self.rows_per_group)
            self._pending = rest.to_batches() if rest.num_rows else []
            self._pending_rows = rest.num_rows

    def close(self) -> None:
        """Write what is gathered, wait for the writer thread and finish the file (its footer)."""
        if self._pending_rows:
            self._hand_over(pa.Table.from_batches(self._pending, self.schema))
            self._pending, self._pending_rows = [], 0
        self._stop()
        if self._failure is not None:
            raise self._failure
        self._writer.close()

    def __enter__(self) -> RowGroupWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            self._stop()  # the file is being abandoned: the thread ends, the caller removes the file

    def _hand_over(self, item: object) -> None:
        while True:
            if self._failure is not None:
                raise self._failure
            try:
                self._handoff.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue  # the writer thread may have failed meanwhile: looked at before trying again

    def _stop(self) -> None:
        while self._thread.is_alive():
            try:
                self._handoff.put(_DONE, timeout=_POLL_SECONDS)
                break
            except queue.Full:
                continue
        self._thread.join()

    def _run(self) -> None:
        while (item := self._handoff.get()) is not _DONE:
            if self._failure is not None:
                continue  # drain: the caller raises the failure at its next hand-over
            try:
                assert isinstance(item, pa.Table)
                self._writer.write_table(item, row_group_size=self.rows_per_group)
            except BaseException as exc:  # raised in the caller's thread
                self._failure = exc
