"""The command line as a real process (``python -m spreports.workers.cli``): masked config, one clear line
for each expected mistake."""

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
        [sys.executable, "-m", "spreports.workers.cli", *args],
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


def test_config_masks_url_passwords(tmp_path: Path) -> None:
    result = spreports(
        "config",
        env={
            "SPREPORTS_BROKER_URL": "redis://:br0ker-pw@redis.internal:6379/0",
            "SPREPORTS_RESULT_BACKEND": "redis://default:res-pw@redis.internal:6379/1",
        },
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "SPREPORTS_BROKER_URL=redis://:**********@redis.internal:6379/0" in result.stdout
    assert "SPREPORTS_RESULT_BACKEND=redis://default:**********@redis.internal:6379/1" in result.stdout
    as_json = spreports("config", "--json", env={"SPREPORTS_BROKER_URL": "redis://:br0ker-pw@h:1/0"}, cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    assert "br0ker-pw" not in as_json.stdout
    assert "res-pw" not in result.stdout + result.stderr and "br0ker-pw" not in result.stdout + result.stderr


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


def test_worker_starts_without_celerys_umbrella_command(tmp_path: Path, redis_url: str) -> None:
    # celery.bin.celery imports every Celery subcommand and plugin (Flower, click-repl): every pool process
    # of the worker would carry them in its memory.
    env = {"SPREPORTS_BROKER_URL": redis_url, "PYTHONPROFILEIMPORTTIME": "1"}
    result = spreports("worker", "--help", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("Usage: spreports worker [OPTIONS]")
    imported = {
        line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")
    }
    assert "celery.bin.worker" in imported
    assert "celery.bin.celery" not in imported


def errors(result: subprocess.CompletedProcess[str]) -> str:
    """stderr without ``check``'s warnings (a Redis that forgets...), which show beside its failures."""
    return "".join(
        line for line in result.stderr.splitlines(keepends=True) if not line.startswith("spreports: warning: ")
    )


def test_unwritable_storage_path_is_one_line(tmp_path: Path, redis_url: str) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    # The test Redis, so no embedded redis-server is left behind.
    result = spreports(
        "check",
        env={"SPREPORTS_STORAGE__URL": str(blocker / "reports"), "SPREPORTS_BROKER_URL": redis_url},
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert errors(result).startswith("spreports: error: SPREPORTS_STORAGE__URL:")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "SPREPORTS_SQS__REPORT_TYPES",
            "[secret-ish",
            'spreports: error: SPREPORTS_SQS__REPORT_TYPES: is not valid JSON (lists are written as ["a", "b"])',
        ),
        (
            "SPREPORTS_DOCUMENTS__ALLOWED_HOSTS",
            "*.secret-ish.com",
            "spreports: error: SPREPORTS_DOCUMENTS__ALLOWED_HOSTS:",
        ),
        ("SPREPORTS_LWA", "{secret-ish", "spreports: error: SPREPORTS_LWA: is not valid JSON"),
    ],
)
def test_malformed_json_setting_is_one_line(tmp_path: Path, name: str, value: str, expected: str) -> None:
    result = spreports("config", env={name: value}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(expected)
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert "secret-ish" not in result.stdout + result.stderr


def test_unreachable_s3_storage_is_one_line(tmp_path: Path, redis_url: str) -> None:
    from tests.servers import free_port

    result = spreports(
        "check",
        env={
            "SPREPORTS_STORAGE__URL": "s3://reports-bucket/prefix",
            "SPREPORTS_BROKER_URL": redis_url,
            # Nothing listens there: S3 cannot be reached.
            "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{free_port()}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
            "AWS_REGION": "us-east-1",
        },
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert errors(result).startswith(
        "spreports: error: SPREPORTS_STORAGE__URL: s3://reports-bucket/prefix cannot be used"
    )
    assert "cannot reach S3" in result.stderr
    assert len(errors(result).strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert "testing-secret-key" not in result.stderr
