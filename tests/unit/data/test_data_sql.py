"""``spreports data sql``: the output formats, and one line for a bad query, no rows yet or no data extra."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from spreports.storage import LocalStorage
from spreports.workers.cli import main
from spreports.workers.cli.data import TABLE_ROWS
from tests.data_rows import rows_table, store_manifest, store_rows

TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"
QUERY = "SELECT seller_sku, price, _marketplace_ids FROM listings ORDER BY price DESC"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local storage holding two listings, named by SPREPORTS_STORAGE__URL."""
    storage = tmp_path / "reports"
    price = pa.array([Decimal("1.5"), Decimal("20")], pa.decimal128(38, 6))
    store_rows(LocalStorage(storage), TYPE, rows_table({"seller_sku": ["A", "B"], "price": price}))
    monkeypatch.setenv("SPREPORTS_STORAGE__URL", str(storage))
    monkeypatch.setenv("SPREPORTS_DATA_DIR", str(tmp_path / "data"))
    return storage


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["data", *args])


def test_csv_to_stdout_by_default_off_a_terminal(root: Path) -> None:
    result = run("sql", QUERY)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "seller_sku,price,_marketplace_ids",
        "B,20.000000,[ATVPDKIKX0DER]",
        "A,1.500000,[ATVPDKIKX0DER]",
    ]


def test_csv_quotes_what_needs_quoting(root: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    result = run("sql", "SELECT 'a,b' AS x, 'say \"hi\"' AS y, NULL AS z", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_text().splitlines() == ["x,y,z", '"a,b","say ""hi""",']


def test_json_lines_keep_numbers_and_lists(root: Path) -> None:
    result = run("sql", QUERY, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows == [
        {"seller_sku": "B", "price": 20.0, "_marketplace_ids": ["ATVPDKIKX0DER"]},
        {"seller_sku": "A", "price": 1.5, "_marketplace_ids": ["ATVPDKIKX0DER"]},
    ]


def test_parquet_needs_a_file_and_keeps_the_types(root: Path, tmp_path: Path) -> None:
    refused = run("sql", QUERY, "--format", "parquet")
    assert refused.exit_code == 2
    assert refused.stderr == "spreports: error: --format parquet needs --output FILE\n"
    target = tmp_path / "out.parquet"
    result = run("sql", QUERY, "--output", str(target))  # the format from the suffix
    assert result.exit_code == 0, result.output
    table = pq.read_table(target)
    assert table.schema.field("price").type == pa.decimal128(38, 6)
    assert table.column("seller_sku").to_pylist() == ["B", "A"]


def test_a_file_gets_the_format_its_suffix_names(root: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    result = run("sql", "SELECT seller_sku FROM listings ORDER BY 1", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_text().splitlines() == ['{"seller_sku":"A"}', '{"seller_sku":"B"}']
    assert result.stderr == f"wrote {target}\n"


def test_a_table_shows_the_rows_and_says_when_there_are_more(root: Path) -> None:
    result = run("sql", QUERY, "--format", "table")
    assert result.exit_code == 0, result.output
    assert "seller_sku" in result.stdout and "20.000000" in result.stdout
    assert result.stderr == "2 rows\n"
    many = run("sql", f"SELECT range AS n FROM range({TABLE_ROWS + 5})", "--format", "table")
    assert f"the first {TABLE_ROWS} rows" in many.stderr
    assert f" {TABLE_ROWS - 1} " in many.stdout and f" {TABLE_ROWS} " not in many.stdout


def test_a_value_is_shown_as_it_is_not_as_markup(root: Path) -> None:
    result = run("sql", "SELECT '[bold]x[/bold]' AS v", "--format", "table")
    assert "[bold]x[/bold]" in result.stdout


def test_a_bad_query_is_duckdbs_message_in_one_line(root: Path) -> None:
    result = run("sql", "SELECT nope FROM listings")
    assert result.exit_code == 2
    assert result.stderr.startswith("spreports: error: Binder Error: Referenced column ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_no_rows_yet_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = tmp_path / "reports"
    monkeypatch.setenv("SPREPORTS_STORAGE__URL", str(storage))
    monkeypatch.setenv("SPREPORTS_DATA_DIR", str(tmp_path / "data"))
    empty = run("sql", "SELECT * FROM listings")
    assert empty.exit_code == 2
    assert empty.stderr.endswith("(no rows yet: no document is stored in SPREPORTS_STORAGE__URL)\n")
    store_manifest(LocalStorage(storage), report_type=TYPE)
    unconverted = run("sql", "SELECT * FROM listings")
    assert "(no rows yet: none of the 1 stored documents is converted;" in unconverted.stderr
    assert unconverted.stderr.count("\n") == 1


def test_without_the_data_extra_one_line_names_it(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    result = run("sql", QUERY)
    assert result.exit_code == 2
    assert result.stderr == (
        "spreports: error: spreports data sql needs pyarrow: "
        "install spreports[data] (pip install 'spreports[data]') to turn stored documents into rows\n"
    )


def test_the_query_can_come_from_stdin(root: Path) -> None:
    result = CliRunner().invoke(main, ["data", "sql", "-"], input="SELECT count(*) AS n FROM listings;\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["n", "2"]


def test_a_table_is_not_written_to_a_file(root: Path, tmp_path: Path) -> None:
    result = run("sql", QUERY, "--format", "table", "--output", str(tmp_path / "x.txt"))
    assert result.exit_code == 2
    assert "a table is for the terminal" in result.stderr
