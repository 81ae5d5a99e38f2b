"""Every declared type round-trips: the simulator's document of it, converted, equals the schema's plain-Python reading.

Per table and marketplace: rows written = the document's rows less the rejected lines, the rejected line
numbers and the unparsed count as the reading says, and every typed value equal to the raw text parsed
by the schema (strings byte-identical). The reading is ``tests/data_roundtrip.py`` (the schemas' own
helper, independent of the converter).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from spreports.data.convert import REJECTED_LINES_KEPT, Plan, Provenance, convert_file
from spreports.data.filesystem import DataRoot
from spreports.data.schemas import all_schemas

roundtrip = pytest.importorskip("tests.data_roundtrip", reason="the schemas' round-trip helper is not here yet")

MARKETPLACES = ("ATVPDKIKX0DER", "A1PA6795UKMFR9", "A1VC38T7YXB528")  # US, DE (decimal commas), JP (Shift_JIS)
TYPES = sorted(schema.report_type for schema in all_schemas())


@pytest.mark.parametrize("marketplace", MARKETPLACES)
@pytest.mark.parametrize("report_type", TYPES)
def test_a_declared_type_round_trips(report_type: str, marketplace: str, tmp_path: Path) -> None:
    schema = next(s for s in all_schemas() if s.report_type == report_type)
    generated = roundtrip.document(report_type, marketplace=marketplace, seed=3)
    source = tmp_path / f"doc.{ {'tsv': 'txt'}.get(schema.format, schema.format) }"
    source.write_text(generated.text, encoding="utf-8")
    root = DataRoot(pafs.LocalFileSystem(), str(tmp_path), is_s3=False)
    for table in schema.all_tables():
        plan = Plan(table.dataset, schema.format, table.record_path, table.columns)
        conversion = convert_file(root, str(source), plan, Provenance("A1SELLER", "DOC"), [f"{table.dataset}.parquet"])
        expected = generated.expected(table.dataset)
        assert (conversion.rows, conversion.rows_rejected, conversion.values_unparsed) == (
            len(expected.rows), expected.rows_rejected, expected.values_unparsed,
        ), table.dataset  # fmt: skip
        assert list(conversion.rejected_lines) == expected.rejected_lines[:REJECTED_LINES_KEPT]
        names = [column.name for column in table.columns] + ["_row_number"]
        rows = pq.read_table(tmp_path / f"{table.dataset}.parquet", columns=names).to_pylist()
        assert rows == [{name: row.get(name) for name in names} for row in expected.rows], table.dataset
