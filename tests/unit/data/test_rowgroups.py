"""Row groups: gathered to their size, written by the writer thread, its failure raised in the caller."""

from __future__ import annotations

import io
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spreports.data.rowgroups import RowGroupWriter

SCHEMA = pa.schema([pa.field("n", pa.int64())])


def batch(start: int, rows: int) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(range(start, start + rows), pa.int64())], schema=SCHEMA)


def test_batches_are_gathered_into_row_groups_of_the_size_asked() -> None:
    sink = io.BytesIO()
    with RowGroupWriter(pa.PythonFile(sink, mode="w"), SCHEMA, rows_per_group=100) as writer:
        for start in range(0, 350, 70):
            writer.write(batch(start, 70))
    parquet = pq.ParquetFile(io.BytesIO(sink.getvalue()))
    assert [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)] == [100, 100, 100, 50]
    assert parquet.read().column("n").to_pylist() == list(range(350))


class Refusing(io.RawIOBase):
    """A sink that takes the file's first bytes, then fails, as a disk filling up would."""

    def __init__(self) -> None:
        self.taken = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.taken:
            raise OSError("no space left")
        self.taken += len(data)
        return len(data)


def test_a_failing_write_in_the_thread_is_raised_to_the_caller_and_the_thread_ends() -> None:
    threads = set(threading.enumerate())
    writer = RowGroupWriter(pa.PythonFile(Refusing(), mode="w"), SCHEMA, rows_per_group=10)
    with pytest.raises(OSError, match="no space left"):
        for start in range(0, 1000, 10):
            writer.write(batch(start, 10))
        writer.close()
    writer.__exit__(OSError, None, None)
    assert set(threading.enumerate()) <= threads
