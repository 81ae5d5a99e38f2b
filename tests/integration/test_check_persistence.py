"""``spreports check`` warns when a restart of Redis would lose the queues, and when the sweep has nothing to sweep."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis

from spreports.simulator import Simulator
from tests.processes import product_env
from tests.servers import redis_server


@pytest.fixture
def deployment(simulator: Simulator, sqs_queue_url: str) -> dict[str, str]:
    """What every other check needs to pass: LWA credentials (the simulator's) and a queue (moto's)."""
    return {**simulator.env(), "SPREPORTS_SQS__QUEUE_URL": sqs_queue_url}


def check(tmp_path: Path, url: str, deployment: dict[str, str], **extra: str) -> subprocess.CompletedProcess[str]:
    env = product_env(
        {
            **deployment,
            "SPREPORTS_BROKER_URL": url,
            "SPREPORTS_STORAGE__URL": str(tmp_path / "reports"),
            "SPREPORTS_SQS__REPORT_TYPES": '["GET_MERCHANT_LISTINGS_ALL_DATA"]',
            **extra,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "spreports.workers.cli", "check"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_redis_without_persistence_is_a_warning_and_one_with_it_is_not(
    tmp_path: Path, deployment: dict[str, str]
) -> None:
    with redis_server() as server:  # started with --appendonly no --save ""
        volatile = check(tmp_path, server.url, deployment)
        assert volatile.returncode == 0, volatile.stdout + volatile.stderr
        assert f"ok    broker: Redis at {server.url.rsplit('/', 1)[0]} answers" in volatile.stdout
        [warning] = volatile.stderr.strip().splitlines()
        assert (
            warning.startswith("spreports: warning: Redis at redis://127.0.0.1:") and "keeps nothing on disk" in warning
        )

        redis.Redis.from_url(server.url).config_set("appendonly", "yes")
        durable = check(tmp_path, server.url, deployment)
        assert durable.returncode == 0 and durable.stderr == ""


def test_a_sweep_without_report_types_is_a_warning(tmp_path: Path, deployment: dict[str, str]) -> None:
    with redis_server() as server:
        redis.Redis.from_url(server.url).config_set("appendonly", "yes")
        result = check(tmp_path, server.url, deployment, SPREPORTS_SQS__REPORT_TYPES="[]")
        assert result.returncode == 0
        [warning] = result.stderr.strip().splitlines()
        assert warning.startswith("spreports: warning: the 15-minute sweep has no report types to look for")
