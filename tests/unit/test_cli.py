"""The command line: masked config, one clear line for each expected mistake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def spreports(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `spreports` command in a subprocess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SPREPORTS_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "spreports.cli", *args],
        capture_output=True, text=True, env=full_env, cwd=cwd, timeout=60, check=False,
    )  # fmt: skip


def test_config_masks_secrets(tmp_path: Path) -> None:
    result = spreports(
        "config",
        env={"SPREPORTS_LWA__CLIENT_SECRET": "s3cr3t-client", "SPREPORTS_LWA__REFRESH_TOKEN": "Atzr|s3cr3t-refresh"},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "SPREPORTS_LWA__CLIENT_SECRET=**********" in result.stdout
    assert "SPREPORTS_LWA__REFRESH_TOKEN=**********" in result.stdout
    assert "s3cr3t" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SPREPORTS_TYPO": "1"}, "spreports: error: SPREPORTS_TYPO: unknown setting"),
        (
            {"SPREPORTS_BROKER_URL": "redis://:pw@host:xx/0"},
            "spreports: error: SPREPORTS_BROKER_URL: has a malformed port",
        ),
        ({"SPREPORTS_SQS__WAIT_TIME_SECONDS": "-1"}, "spreports: error: SPREPORTS_SQS__WAIT_TIME_SECONDS"),
    ],
)
def test_bad_settings_give_one_line_and_exit_2(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    result = spreports("config", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(expected)
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert "pw@" not in result.stderr


def test_unreachable_redis_is_one_line(tmp_path: Path) -> None:
    from tests.servers import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    result = spreports("worker", "--help-not-reached", env={"SPREPORTS_BROKER_URL": url}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("spreports: error: Redis at redis://127.0.0.1")
    assert "Traceback" not in result.stderr


def test_unwritable_storage_path_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = spreports(
        "check",
        env={"SPREPORTS_STORAGE__URL": str(blocker / "reports"), "SPREPORTS_DATA_DIR": str(tmp_path / "d")},
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("spreports: error: SPREPORTS_STORAGE__URL:")
    assert "Traceback" not in result.stderr
