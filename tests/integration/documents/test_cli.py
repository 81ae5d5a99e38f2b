"""`spreports reports download` against the simulator: in-process (--local) and through a worker."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator
from spreports.storage import open_storage
from spreports.workers.cli import main
from tests.integration.documents.helpers import check_stored, expected_utf8


@pytest.fixture
def env(sim: Simulator, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    variables = {
        **sim.env(),
        "SPREPORTS_LWA__CLIENT_ID": settings.lwa.client_id or "",
        "SPREPORTS_BROKER_URL": settings.broker_url or "",
        "SPREPORTS_STORAGE__URL": settings.storage.url,
        "SPREPORTS_DATA_DIR": str(settings.data_dir),
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    # The CLI configures logging process-wide (levels of root and urllib3): put them back afterwards.
    for name in ("", "urllib3"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.getLogger(name).level)
    return variables


def test_local_download_by_report_id_prints_location_and_summary(
    sim: Simulator, settings: Settings, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="Cp1252", size=300_000))
    report_id = sim.report_of_document(document_id)["reportId"]
    result = CliRunner().invoke(main, ["reports", "download", "--report", report_id, "--local"])
    assert result.exit_code == 0, result.output
    first, _, rest = result.output.partition("\n")
    summary = json.loads(rest)
    manifest = open_storage(settings).find(sim.seller_id, document_id)
    assert manifest is not None and first == f"stored at {manifest.location}"
    assert summary["sha256"] == manifest.sha256 and manifest.report_id == report_id
    check_stored(manifest, expected_utf8(sim, document_id, "Cp1252"))
    assert "X-Amz" not in result.output


def test_download_through_a_worker(
    sim: Simulator, settings: Settings, env: dict[str, str], celery_worker: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    document_id = sim.add_document(DocumentSpec(gzip=False, charset="UTF-8"))
    result = CliRunner().invoke(main, ["reports", "download", "--document", document_id, "--timeout", "120"])
    assert result.exit_code == 0, result.output
    manifest = open_storage(settings).find(sim.seller_id, document_id)
    assert manifest is not None and f"stored at {manifest.location}" in result.output
    check_stored(manifest, expected_utf8(sim, document_id, "UTF-8"))


def test_bad_usage_is_one_line(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["reports", "download"])
    assert result.exit_code == 2 and "exactly one of --document ID or --report ID" in result.output
    result = CliRunner().invoke(main, ["reports", "download", "--report", "NO-SUCH-REPORT", "--local"])
    assert result.exit_code == 2 and result.output.startswith("spreports: error:")
    assert "Traceback" not in result.output
