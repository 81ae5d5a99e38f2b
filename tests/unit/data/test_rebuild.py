"""Rebuild: every stored document converted again from its raw bytes, a schema change taking effect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from spreports.data import convert, rebuild
from spreports.data.schemas import DeclaredSchema
from spreports.settings import Settings
from spreports.storage import open_storage
from spreports.workers.cli import main
from tests.unit.data.test_convert import SELLER, TYPE, store


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SPREPORTS_STORAGE__URL", str(tmp_path / "reports"))
    return Settings(storage={"url": str(tmp_path / "reports")})  # type: ignore[arg-type]


def test_rebuild_after_a_schema_change_narrows_the_dataset_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = open_storage(settings)
    for document_id, qty in (("DOC-A", "1"), ("DOC-B", "many")):
        convert.convert_document(storage, store(storage, document_id, f"sku\tqty\nX\t{qty}\n"), settings=settings)
    schema_file = Path(settings.storage.url) / f"_data/_schemas/{TYPE}.json"
    assert [c["type"] for c in json.loads(schema_file.read_text())] == ["string", "string"]

    declared = DeclaredSchema.model_validate(
        {"report_type": TYPE, "short_name": "something", "format": "tsv",
         "columns": [{"name": "sku", "source": "sku", "type": "string"},
                     {"name": "qty", "source": "qty", "type": "integer"}]}
    )  # fmt: skip
    for module in (convert, rebuild):
        monkeypatch.setattr(module, "schema_for", lambda report_type: declared if report_type == TYPE else None)
    done = list(rebuild.rebuild(settings, report_type=TYPE, storage=storage))
    assert [(d.manifest.report_document_id, d.conversion.values_unparsed) for d in done if d.conversion] == [
        ("DOC-A", 0),
        ("DOC-B", 1),
    ]
    assert [c["type"] for c in json.loads(schema_file.read_text())] == ["string", "integer"]
    assert storage.find(SELLER, "DOC-B").data["schema"] == "declared"  # type: ignore[union-attr]


def test_the_command_sums_up_per_type_and_names_what_failed(settings: Settings) -> None:
    storage = open_storage(settings)
    store(storage, "DOC-A", "sku\tqty\nX\t1\nbroken\n")
    store(storage, "DOC-J", '{"r": [1, 2', suffix="json", report_type="GET_OTHER_DATA")
    result = CliRunner().invoke(main, ["data", "rebuild", "--seller", SELLER])
    assert f"{TYPE}: 1 documents, 1 rows, 1 rejected, 0 values unparsed" in result.output
    assert f"{SELLER} DOC-J: not converted: the document is not JSON" in result.output
    assert result.exit_code != 0
    assert "Traceback" not in result.output
