"""One-shot commands and Flower log in the fleet's one format (``SPREPORTS_LOG_FORMAT``) at its level.

Workers and the relay have their own test (``test_json_logs``); here ``spreports reports download --local``
(a one-shot command whose pipeline logs) and ``spreports flower`` (whose lines are Flower's and tornado's).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from spreports.simulator import DocumentSpec, Simulator
from tests.processes import product_env, spreports_process, wait_for
from tests.servers import free_port


def _records(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON record: a line that is not one fails the test."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_one_shot_command_logs_json_lines(simulator: Simulator, redis_url: str, tmp_path: Path) -> None:
    document_id = simulator.add_document(DocumentSpec(gzip=True, charset="UTF-8"))
    env = {
        **simulator.env(),
        "SPREPORTS_BROKER_URL": redis_url,
        "SPREPORTS_STORAGE__URL": str(tmp_path / "reports"),
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
        "SPREPORTS_LOG_FORMAT": "json",
    }
    done = subprocess.run(
        [sys.executable, "-m", "spreports.workers.cli", "reports", "download", "--document", document_id, "--local"],
        env=product_env(env), cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("stored at ")
    records = _records(done.stderr)
    ours = [r for r in records if r["logger"].startswith("spreports.")]
    assert any(document_id in r["message"] for r in ours), records
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)


def test_flower_logs_json_lines_at_the_product_s_level(redis_url: str, tmp_path: Path) -> None:
    env = {
        "SPREPORTS_BROKER_URL": redis_url,
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
        "SPREPORTS_LOG_FORMAT": "json",
        "SPREPORTS_LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "flower.log"
    with spreports_process("flower", f"--port={free_port()}", env=env, cwd=tmp_path, log=log) as flower:
        # With no worker, Flower's inspection of the workers times out and says so (a WARNING).
        wait_for(lambda: flower.poll() is not None or "Inspect method" in log.read_text(errors="replace"), timeout=30)
    records = _records(log.read_text(errors="replace"))
    assert any(r["logger"].startswith("flower") and r["level"] == "WARNING" for r in records), records
    # Tornado's own logging set-up would have put the root logger back at INFO ("Visit me at ...").
    assert not [r for r in records if r["level"] in ("DEBUG", "INFO")], records
