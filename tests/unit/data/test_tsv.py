"""Flat files read as text columns: quoted fields, rejected lines by number, blank lines, exact row numbers."""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs as pafs
import pytest

from spreports.data.tsv import TsvReader, split_header
from spreports.errors import DocumentRejected


def read(tmp_path: Path, text: str, block_size: int = 1 << 20) -> tuple[TsvReader, list[dict[str, object]]]:
    path = tmp_path / "doc.txt"
    path.write_bytes(text.encode("utf-8"))
    reader = TsvReader(pafs.LocalFileSystem(), str(path), block_size=block_size)
    rows: list[dict[str, object]] = []
    for batch in reader.batches():
        columns = [column.to_pylist() for column in batch.columns]
        for i, line in enumerate(batch.row_numbers.to_pylist()):
            rows.append({"line": line, **{s: c[i] for s, c in zip(reader.sources, columns, strict=True)}})
    return reader, rows


def test_quoted_fields_and_literal_quotes(tmp_path: Path) -> None:
    _, rows = read(tmp_path, 'a\tb\n1\t12" ruler\n2\t"tab\tinside ""q"""\n')
    assert rows == [{"line": 2, "a": "1", "b": '12" ruler'}, {"line": 3, "a": "2", "b": 'tab\tinside "q"'}]


def test_lines_with_the_wrong_field_count_are_rejected_by_line_number(tmp_path: Path) -> None:
    reader, rows = read(tmp_path, "a\tb\tc\n1\tx\ty\nshort\tline\n2\tx\ty\n3\tx\ty\textra\n4\t\t\n")
    assert [row["line"] for row in rows] == [2, 4, 6]
    assert rows[-1] == {"line": 6, "a": "4", "b": None, "c": None}
    assert reader.rejected_lines == [3, 5]


def test_blank_lines_inside_are_rejected_at_the_end_dropped(tmp_path: Path) -> None:
    reader, rows = read(tmp_path, "a\tb\n1\tx\n\n2\ty\n\n\n")
    assert [row["line"] for row in rows] == [2, 4]
    assert reader.rejected_lines == [3]


def test_row_numbers_stay_exact_across_many_small_blocks(tmp_path: Path) -> None:
    lines = ["a\tb"]
    for n in range(2, 3000):
        lines.append(f"{n}\tx" if n % 97 else "broken")
    reader, rows = read(tmp_path, "\n".join(lines) + "\n", block_size=4096)
    assert all(row["a"] == str(row["line"]) for row in rows)
    assert reader.rejected_lines == [n for n in range(2, 3000) if n % 97 == 0]
    assert len(rows) + reader.rows_rejected == 2998


def test_the_header_keeps_amazons_names(tmp_path: Path) -> None:
    assert split_header('\ufeffitem-name\t"seller sku"\tprice\r\n') == ["item-name", "seller sku", "price"]
    reader, rows = read(tmp_path, "sku\tsku\n1\t2\n")
    assert reader.sources == ["sku", "sku"] and rows == [{"line": 2, "sku": "2"}]


def test_an_empty_document_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(DocumentRejected, match="no header"):
        read(tmp_path, "")
