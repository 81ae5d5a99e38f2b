"""One-shot commands leave nothing running and no folder behind, and say clearly what stops them.

- ``reports download --local`` (and any one-shot command) with no broker configured starts the
  embedded Redis for itself and stops it when it ends; the data directory it created goes too, unless
  tasks wait in it for a worker. An embedded Redis that was already running is left running.
- ``schedules sync`` / ``list`` without seller credentials exit 2 with one line, not 0 in silence.
- A second relay given the same metrics port ends with one line, not an ``OSError`` traceback.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from spreports.simulator import DocumentSpec, Simulator
from spreports.workers.embedded_redis import EmbeddedRedis
from tests.integration.embedded_helpers import redis_servers_in, short_directory
from tests.processes import product_env, spreports_process, wait_for
from tests.servers import free_port

SCHEDULES = '[[schedules]]\nreport_type = "GET_MERCHANT_LISTINGS_ALL_DATA"\nmarketplace_ids = ["ATVPDKIKX0DER"]\nperiod = "P1D"\n'


@pytest.fixture
def short_dir() -> Iterator[Path]:
    with short_directory() as directory:
        yield directory


def spreports(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spreports.workers.cli", *args],
        env=product_env(env), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def test_a_local_download_stops_the_embedded_redis_it_started_and_leaves_no_folder(
    simulator: Simulator, short_dir: Path, tmp_path: Path
) -> None:
    storage = tmp_path / "reports"
    env = {**simulator.env(), "SPREPORTS_STORAGE__URL": str(storage)}
    for run in range(3):
        document_id = simulator.add_document(DocumentSpec(gzip=True, size=20_000))
        result = spreports("reports", "download", "--document", document_id, "--local", env=env, cwd=short_dir)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("stored at "), result.stdout
        assert redis_servers_in(short_dir) == [], f"run {run} left its embedded Redis running"
        assert list(short_dir.iterdir()) == [], f"run {run} left {list(short_dir.iterdir())}"
    assert len(list(storage.rglob("*.manifest.json"))) >= 3


def test_a_running_embedded_redis_is_left_running(simulator: Simulator, short_dir: Path, tmp_path: Path) -> None:
    embedded = EmbeddedRedis(short_dir / ".spreports")
    embedded.ensure_running()
    env = {**simulator.env(), "SPREPORTS_STORAGE__URL": str(tmp_path / "reports")}
    document_id = simulator.add_document(DocumentSpec(gzip=True, size=20_000))
    result = spreports("reports", "download", "--document", document_id, "--local", env=env, cwd=short_dir)
    assert result.returncode == 0, result.stderr
    assert embedded.is_running()


def test_a_one_shot_command_that_queued_work_keeps_it_for_a_worker(simulator: Simulator, short_dir: Path) -> None:
    # No worker runs: the request is queued, the command gives up waiting, and its embedded Redis stops;
    # the queued task stays on disk for the worker that starts the embedded Redis again.
    env = simulator.env()
    result = spreports("reports", "request", "--type", "GET_MERCHANT_LISTINGS_ALL_DATA", "-m", "ATVPDKIKX0DER",
                       "--timeout", "1", env=env, cwd=short_dir)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "no worker answered" in result.stderr
    assert redis_servers_in(short_dir) == []
    embedded = EmbeddedRedis(short_dir / ".spreports")
    from spreports.connection import connect

    assert connect(embedded.ensure_running()).llen("control") == 1


@pytest.mark.parametrize("command", ["sync", "list"])
def test_schedules_without_seller_credentials_is_one_line_and_exit_2(
    command: str, redis_url: str, tmp_path: Path
) -> None:
    schedules = tmp_path / "schedules.toml"
    schedules.write_text(SCHEDULES)
    env = {"SPREPORTS_BROKER_URL": redis_url, "SPREPORTS_SCHEDULES_FILE": str(schedules)}
    result = spreports("schedules", command, env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        "spreports: error: no seller credentials: set SPREPORTS_SELLER_ID and SPREPORTS_LWA__REFRESH_TOKEN, "
        "or SPREPORTS_SELLERS_FILE"
    ]
    assert result.stdout == ""


def test_a_second_relay_on_the_same_metrics_port_says_so_in_one_line(
    redis_url: str, sqs_queue_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {"SPREPORTS_BROKER_URL": redis_url, "SPREPORTS_SQS__QUEUE_URL": sqs_queue_url,
           "SPREPORTS_SQS__METRICS_PORT": str(port), "SPREPORTS_SQS__WAIT_TIME_SECONDS": "1"}  # fmt: skip
    with spreports_process("relay", env=env, cwd=tmp_path) as first:

        def serving() -> bool:
            assert first.poll() is None, (tmp_path / "relay.log").read_text()
            return f"metrics on 127.0.0.1 port {port}" in (tmp_path / "relay.log").read_text()

        wait_for(serving, timeout=60)
        second = spreports("relay", env=env, cwd=tmp_path, timeout=60)
        assert first.poll() is None
    assert second.returncode == 2, second.stderr
    [line] = second.stderr.strip().splitlines()[-1:]
    assert line.startswith(f"spreports: error: SPREPORTS_SQS__METRICS_PORT: cannot serve metrics on 127.0.0.1:{port}")
    assert "Traceback" not in second.stderr
