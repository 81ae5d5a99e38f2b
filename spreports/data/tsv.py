"""Amazon's flat files read as text columns, streamed in blocks: pyarrow's CSV reader, tab-separated.

The first line is the header (read here, so that repeated or odd names never reach Arrow, which gets
``f0, f1, ...``). A field that starts with ``"`` is quoted (``""`` inside is a literal quote); a ``"``
elsewhere is literal; a value never holds a newline, so a row is a line and line numbers are exact.
Every value comes out as text (null where the cell is empty): typing is the parser's job, per column.

A line whose field count differs from the header's cannot be aligned with the columns: it is rejected,
counted and its line number kept (the first ones go into the manifest). A blank line is no row; one
followed by rows is rejected like any other short line, blank lines at the end are dropped silently.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from spreports.errors import DocumentRejected

if TYPE_CHECKING:
    import pyarrow.fs as pafs

__all__ = ["BLOCK_SIZE", "RawBatch", "TsvReader", "split_header"]

#: Bytes of document per block (one record batch). Arrow reads up to 32 blocks ahead in its I/O thread
#: (16 MiB), and its parser holds per block many times the block in buffers of its own: small blocks keep
#: memory flat (measured in benchmarks/README.md); the typed rows are gathered into row groups.
BLOCK_SIZE = 2**19
_HEADER_LIMIT = 2**20


@dataclass
class RawBatch:
    """Rows of a document as text: one column per source (aligned with the reader's ``sources``)."""

    columns: list[pa.Array]
    row_numbers: pa.Array

    @property
    def num_rows(self) -> int:
        """How many rows the batch holds."""
        return len(self.row_numbers)


def split_header(line: str) -> list[str]:
    """The header's fields: tab-separated, a surrounding pair of quotes dropped, a BOM dropped."""
    fields = line.removeprefix("\ufeff").rstrip("\r\n").split("\t")
    return [f[1:-1].replace('""', '"') if len(f) >= 2 and f[0] == f[-1] == '"' else f for f in fields]


@dataclass
class TsvReader:
    """One tab-separated document on a file system, read block by block."""

    filesystem: pafs.FileSystem
    path: str
    block_size: int = BLOCK_SIZE
    sources: list[str] = field(default_factory=list)
    rejected_lines: list[int] = field(default_factory=list)
    _blank_pending: list[int] = field(default_factory=list)
    _zero_based: pa.Array | None = None

    def __post_init__(self) -> None:
        self.sources = split_header(self._first_line())

    @property
    def rows_rejected(self) -> int:
        """How many lines could not be read as rows (so far)."""
        return len(self.rejected_lines)

    def _first_line(self) -> str:
        with self.filesystem.open_input_stream(self.path) as stream:
            head = b""
            while b"\n" not in head and len(head) < _HEADER_LIMIT:
                chunk = stream.read(64 * 1024)
                if not chunk:
                    break
                head += chunk
        line = head.split(b"\n", 1)[0]
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise DocumentRejected("the document's header is not UTF-8 text") from None
        if not text.strip():
            raise DocumentRejected("the document has no header line")
        return text

    def batches(self) -> Iterator[RawBatch]:
        """The rows, a block at a time; ``rejected_lines`` grows as the rejected lines are met."""
        names = [f"f{i}" for i in range(len(self.sources))]
        reader = pacsv.open_csv(
            self.filesystem.open_input_stream(self.path),
            # One thread: Arrow then numbers every line it rejects (the manifest lists them).
            read_options=pacsv.ReadOptions(use_threads=False, block_size=self.block_size, skip_rows=1, column_names=names),
            parse_options=pacsv.ParseOptions(
                delimiter="\t", quote_char='"', double_quote=True, escape_char=False, newlines_in_values=False,
                ignore_empty_lines=False, invalid_row_handler=self._invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.utf8()), null_values=[""], strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )  # fmt: skip
        next_line = 2  # the header is line 1
        with reader:
            for batch in reader:
                rows = batch.num_rows
                lines, next_line = self._line_numbers(next_line, rows)
                columns = list(batch.columns)
                blank = _blank_rows(columns)
                if blank is not None:
                    columns, lines = self._drop_blank(columns, lines, blank)
                if len(lines):
                    yield RawBatch(columns, lines)
        self._blank_pending.clear()  # blank lines at the end are no rows

    def _invalid(self, row: pacsv.InvalidRow) -> str:
        # An unaligned line: skipped by Arrow, remembered here by its line number (1-based, header = 1).
        self._reject([row.number])
        return "skip"

    def _reject(self, lines: list[int]) -> None:
        if self._blank_pending:
            # Blank lines before a later line are inside the document: rejected too, in line order.
            self.rejected_lines.extend(self._blank_pending)
            self._blank_pending.clear()
        for line in lines:
            bisect.insort(self.rejected_lines, line)

    def _line_numbers(self, first: int, rows: int) -> tuple[pa.Array, int]:
        """The line numbers of ``rows`` rows read from line ``first`` on, skipping the rejected lines."""
        skipped = 0
        while True:
            end = first + rows + skipped
            inside = bisect.bisect_left(self.rejected_lines, end) - bisect.bisect_left(self.rejected_lines, first)
            if inside == skipped:
                break
            skipped = inside
        if skipped:
            lo = bisect.bisect_left(self.rejected_lines, first)
            gone = set(self.rejected_lines[lo : lo + skipped])
            return pa.array([line for line in range(first, end) if line not in gone], pa.int64()), end
        return pc.add(self._counting(rows), first), end

    def _counting(self, rows: int) -> pa.Array:
        """0, 1, ... rows - 1 (sliced from one array kept for the largest block: no Python loop per block)."""
        counting = self._zero_based
        if counting is None or len(counting) < rows:
            counting = self._zero_based = pa.array(range(max(rows, 2 * len(counting or ()))), pa.int64())
        return counting.slice(0, rows)

    def _drop_blank(self, columns: list[pa.Array], lines: pa.Array, blank: pa.Array) -> tuple[list[pa.Array], pa.Array]:
        blank_lines = pc.filter(lines, blank).to_pylist()
        keep = pc.invert(blank)
        kept_lines = pc.filter(lines, keep)
        if len(kept_lines):
            # Rows follow some of these blank lines: those are inside the document.
            last_row = kept_lines[-1].as_py()
            inside = [line for line in blank_lines if line < last_row]
            self._reject(inside)
            self._blank_pending.extend(line for line in blank_lines if line > last_row)
        else:
            self._blank_pending.extend(blank_lines)
        return [pc.filter(column, keep) for column in columns], kept_lines


def _blank_rows(columns: list[pa.Array]) -> pa.Array | None:
    """Which rows are blank lines (every cell null), or None when none is."""
    if not columns or columns[0].null_count == 0:
        return None
    blank = pc.is_null(columns[0])
    for column in columns[1:]:
        if not pc.any(blank).as_py():
            return None
        if column.null_count:
            blank = pc.and_(blank, pc.is_null(column))
        else:
            return None
    return blank if pc.any(blank).as_py() else None
