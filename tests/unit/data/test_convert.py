"""Documents to Parquet on a local storage: typed rows, provenance, the manifest's data section, the dataset schema."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from spreports.data import tsv
from spreports.data.convert import Plan, Provenance, convert_document, convert_file
from spreports.data.filesystem import DataRoot, open_root
from spreports.data.schemas import DeclaredColumn
from spreports.settings import Settings
from spreports.storage import DocumentKey, Manifest, Storage, open_storage

SELLER = "A1SELLER"
TYPE = "GET_SOMETHING_NEW_DATA"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(storage={"url": str(tmp_path / "reports")})  # type: ignore[arg-type]


def store(storage: Storage, document_id: str, body: str, *, suffix: str = "txt", report_type: str = TYPE) -> Manifest:
    """A document stored as the retrieval stores it, with its manifest (report window 2026-11-20..21)."""
    key = DocumentKey(seller_id=SELLER, report_document_id=document_id, report_type=report_type, day=date(2026, 11, 28))
    writer = storage.open_document(key, suffix)
    writer.write(body.encode("utf-8"))
    location = writer.commit()
    manifest = Manifest(
        seller_id=SELLER, report_document_id=document_id, report_id=f"R-{document_id}", report_type=report_type,
        location=location, manifest_location=location.rsplit(".", 1)[0] + ".manifest.json",
        content_type="text/plain", compression="none", bytes_in=1, bytes_out=1, sha256="0" * 64, attempts=1,
        stored_at=datetime(2026, 11, 28, tzinfo=UTC),
        report={"dataStartTime": "2026-11-20T00:00:00Z", "dataEndTime": "2026-11-21T00:00:00+00:00",
                "marketplaceIds": ["A1PA6795UKMFR9"]},
    )  # fmt: skip
    storage.write_manifest(key, manifest)
    return manifest


def test_an_inferred_document_converts_with_provenance_and_a_data_section(settings: Settings) -> None:
    storage = open_storage(settings)
    manifest = store(storage, "DOC-1", "sku\tprice\tqty\twhen\nA\t1.5\t3\t2026-11-28\nB\t2,5\tx\t2026-11-29\nbroken\n")
    conversion = convert_document(storage, manifest, settings=settings)
    assert conversion is not None
    path = f"_data/report_type={TYPE}/seller_id={SELLER}/date=2026-11-20/DOC-1.parquet"
    assert (conversion.path, conversion.rows, conversion.rows_rejected, conversion.rejected_lines) == (path, 2, 1, (4,))
    # qty's sample holds "x": the column is inferred text, nothing is unparsed.
    assert (conversion.schema, conversion.values_unparsed) == ("inferred", 0)
    data = storage.find(SELLER, "DOC-1").data  # type: ignore[union-attr]
    assert data is not None and data["path"] == path and data["rejected_lines"] == [4] and data["schema"] == "inferred"
    table = pq.read_table(Path(settings.storage.url) / path)
    assert table.schema.field("sku").metadata == {b"amazon_name": b"sku"}
    assert table.to_pylist()[0] == {
        "sku": "A", "price": Decimal("1.5"), "qty": "3", "when": date(2026, 11, 28),
        "_seller_id": SELLER, "_marketplace_ids": ["A1PA6795UKMFR9"], "_report_id": "R-DOC-1",
        "_report_document_id": "DOC-1", "_data_start": datetime(2026, 11, 20, tzinfo=UTC),
        "_data_end": datetime(2026, 11, 21, tzinfo=UTC), "_row_number": 2,
    }  # fmt: skip
    assert [row["price"] for row in table.to_pylist()] == [Decimal("1.5"), Decimal("2.5")]


def test_a_value_failing_its_inferred_type_later_is_null_and_counted(settings: Settings, tmp_path: Path) -> None:
    root = open_root(settings)
    source = tmp_path / "doc.txt"
    # More than one block: the first decides ("integer"), a later one holds "lots".
    source.write_text("qty\n" + "".join(f"{n}\n" for n in range(120_000)) + "lots\n")
    assert source.stat().st_size > tsv.BLOCK_SIZE
    conversion = convert_file(root, str(source), Plan(TYPE, "tsv"), Provenance(SELLER, "DOC-2"), ["_data", "x.parquet"])
    assert (conversion.rows, conversion.values_unparsed) == (120_001, 1)
    assert pq.read_table(Path(root.root) / "_data/x.parquet").column("qty").type == "int64"


def test_declared_columns_are_typed_by_the_schema_and_extra_ones_inferred(settings: Settings, tmp_path: Path) -> None:
    root = open_root(settings)
    source = tmp_path / "doc.txt"
    source.write_text("seller-sku\tprice\topen-date\tnew-thing\nS1\t1.234,50\t28.11.2026 10:00:00 MEZ\t7\nS2\tx\t\t8\n")
    columns = (
        DeclaredColumn(name="seller_sku", source="seller-sku", type="string"),
        DeclaredColumn(name="price", source="price", type="decimal"),
        DeclaredColumn(name="open_date", source="open-date", type="timestamp", format=("%d.%m.%Y %H:%M:%S %Z",)),
        DeclaredColumn(name="quantity", source="quantity", type="integer"),
    )
    conversion = convert_file(
        root, str(source), Plan("GET_X_DATA", "tsv", (), columns), Provenance(SELLER, "D"), ["f.parquet"]
    )
    assert (conversion.schema, conversion.rows, conversion.values_unparsed) == ("declared", 2, 1)
    rows = pq.read_table(Path(root.root) / "f.parquet").to_pylist()
    assert [(r["seller_sku"], r["price"], r["open_date"], r["quantity"], r["new_thing"]) for r in rows] == [
        ("S1", Decimal("1234.5"), datetime(2026, 11, 28, 9, tzinfo=UTC), None, 7),
        ("S2", None, None, None, 8),
    ]


def test_a_new_column_and_a_conflicting_type_keep_the_dataset_readable_as_one(settings: Settings) -> None:
    storage = open_storage(settings)
    first = store(storage, "DOC-A", "sku\tqty\nA\t1\n")
    second = store(storage, "DOC-B", "sku\tqty\tcolour\nB\tmany\tred\n")
    assert convert_document(storage, first, settings=settings) is not None
    assert convert_document(storage, second, settings=settings) is not None
    root = Path(settings.storage.url)
    schema = json.loads((root / f"_data/_schemas/{TYPE}.json").read_text())
    assert schema == [
        {"name": "sku", "type": "string", "amazon_name": "sku"},
        {"name": "qty", "type": "string", "amazon_name": "qty"},
        {"name": "colour", "type": "string", "amazon_name": "colour"},
    ]
    rows = duckdb.sql(
        f"SELECT sku, qty, colour, _row_number FROM read_parquet('{root}/_data/**/*.parquet', union_by_name=true, "
        "hive_partitioning=true) ORDER BY sku"
    ).fetchall()
    assert rows == [("A", "1", None, 2), ("B", "many", "red", 2)]


def test_json_documents_write_each_declared_table(settings: Settings, tmp_path: Path) -> None:
    root = DataRoot(open_root(settings).filesystem, str(tmp_path), is_s3=False)
    source = tmp_path / "doc.json"
    source.write_text(json.dumps({"byDate": [{"date": "2026-11-28", "sales": {"amount": 12.5}}, {"date": "bad"}]}))
    columns = (
        DeclaredColumn(name="date", source="date", type="date"),
        DeclaredColumn(name="sales_amount", source="sales.amount", type="decimal"),
    )
    plan = Plan("GET_J_BY_DATE", "json", ("byDate",), columns)
    conversion = convert_file(root, str(source), plan, Provenance(SELLER, "D"), ["j.parquet"])
    assert (conversion.rows, conversion.values_unparsed) == (2, 1)
    assert pq.read_table(tmp_path / "j.parquet").select(["date", "sales_amount", "_row_number"]).to_pylist() == [
        {"date": date(2026, 11, 28), "sales_amount": Decimal("12.5"), "_row_number": 1},
        {"date": None, "sales_amount": None, "_row_number": 2},
    ]


def test_error_documents_and_unknown_xml_are_not_converted(settings: Settings) -> None:
    storage = open_storage(settings)
    fatal = store(storage, "DOC-F", "{}", suffix="json").model_copy(update={"processing_status": "FATAL"})
    xml = store(storage, "DOC-X", "<a><b>1</b></a>", suffix="xml")
    assert convert_document(storage, fatal, settings=settings) is None
    assert convert_document(storage, xml, settings=settings) is None
    assert not (Path(settings.storage.url) / "_data").exists()


def test_a_failed_conversion_leaves_no_file_behind(settings: Settings, tmp_path: Path) -> None:
    root = open_root(settings)
    source = tmp_path / "doc.json"
    source.write_text('{"r": [1, 2')
    with pytest.raises(Exception, match="not JSON"):
        convert_file(root, str(source), Plan("GET_J", "json", ("r",)), Provenance(SELLER, "D"), ["_data", "j.parquet"])
    assert not list(Path(root.root).rglob("*.parquet")) and not list(Path(root.root).rglob(".*.tmp"))
