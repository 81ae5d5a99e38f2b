"""``spreports check`` tries what a deployment needs for real and changes nothing.

Against real services: the simulator's LWA endpoint (a real token call), moto's SQS, a real Redis. One
line per check (``ok`` or ``FAIL`` with the reason); any failure exits 2 with one ``spreports: error:``
line. Whatever it finds, the check leaves no folder, no file, no Redis key and no Redis server behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from spreports.simulator import Simulator
from spreports.workers.embedded_redis import EmbeddedRedis
from tests.integration.embedded_helpers import redis_servers_in, short_directory
from tests.processes import product_env
from tests.servers import free_port

SCHEDULES = '[[schedules]]\nreport_type = "GET_MERCHANT_LISTINGS_ALL_DATA"\nmarketplace_ids = ["ATVPDKIKX0DER"]\nperiod = "P1D"\n'
WRONG_REFRESH_TOKEN = "Atzr|not-the-right-refresh-token"


@pytest.fixture
def deployment(simulator: Simulator, redis_url: str, sqs_queue_url: str, tmp_path: Path) -> dict[str, str]:
    """A complete deployment: the simulator's LWA, a moto queue, the test Redis, a valid schedules file."""
    schedules = tmp_path / "schedules.toml"
    schedules.write_text(SCHEDULES)
    (tmp_path / "cwd").mkdir()
    return {
        **simulator.env(),
        "SPREPORTS_BROKER_URL": redis_url,
        "SPREPORTS_SQS__QUEUE_URL": sqs_queue_url,
        "SPREPORTS_SCHEDULES_FILE": str(schedules),
        "SPREPORTS_STORAGE__URL": str(tmp_path / "reports"),
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
    }


def check(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spreports.workers.cli", "check"],
        env=product_env(env), cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def verdicts(result: subprocess.CompletedProcess[str]) -> dict[str, tuple[str, str]]:
    """check's stdout as {name: (ok|FAIL, detail)}."""
    found = {}
    for line in result.stdout.splitlines():
        verdict, _, rest = line.partition(" ")
        name, _, detail = rest.strip().partition(": ")
        assert verdict in ("ok", "FAIL"), result.stdout
        found[name] = (verdict, detail)
    return found


def assert_changed_nothing(tmp_path: Path, keys_before: set[bytes], client: redis.Redis) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "schedules.toml"]
    assert list((tmp_path / "cwd").iterdir()) == []
    assert set(client.keys()) == keys_before


def test_a_complete_deployment_passes_every_check_and_changes_nothing(
    deployment: dict[str, str], simulator: Simulator, redis_client: redis.Redis, tmp_path: Path
) -> None:
    keys = set(redis_client.keys())
    result = check(deployment, tmp_path / "cwd")
    assert result.returncode == 0, result.stdout + result.stderr
    found = verdicts(result)
    assert list(found) == ["broker", "storage", f"credentials {simulator.seller_id}", "queue", "schedules"]
    assert all(verdict == "ok" for verdict, _ in found.values()), result.stdout
    assert "does not exist yet" in found["storage"][1]
    assert "1 schedule(s)" in found["schedules"][1]
    # The credentials were tried by a real token call, whose token went nowhere.
    assert [record.status for record in simulator.requests("lwaToken")] == [200]
    assert_changed_nothing(tmp_path, keys, redis_client)


def _missing_schedules(env: dict[str, str], tmp_path: Path) -> None:
    env["SPREPORTS_SCHEDULES_FILE"] = str(tmp_path / "no-such-schedules.toml")


def _invalid_schedules(env: dict[str, str], tmp_path: Path) -> None:
    Path(env["SPREPORTS_SCHEDULES_FILE"]).write_text('[[schedules]]\nreport_type = "GET_MERCHANT_LISTINGS_ALL_DATA"\n')


def _no_such_queue(env: dict[str, str], tmp_path: Path) -> None:
    env["SPREPORTS_SQS__QUEUE_URL"] = env["SPREPORTS_SQS__QUEUE_URL"].rsplit("/", 1)[0] + "/no-such-queue"


def _dead_letters_only(env: dict[str, str], tmp_path: Path) -> None:
    env["SPREPORTS_SQS__DEAD_LETTER_QUEUE_URL"] = "http://127.0.0.1:1/000000000000/dead-letters"


def _storage_under_a_file(env: dict[str, str], tmp_path: Path) -> None:
    env["SPREPORTS_STORAGE__URL"] = str(tmp_path / "schedules.toml" / "reports")


def _broker_down(env: dict[str, str], tmp_path: Path) -> None:
    env["SPREPORTS_BROKER_URL"] = f"redis://:broker-secret@127.0.0.1:{free_port()}/0"


BROKEN = {
    "no LWA client": (("SPREPORTS_LWA__CLIENT_ID", "SPREPORTS_LWA__CLIENT_SECRET"), None, "credentials",
                      "no LWA client"),
    "no seller": (("SPREPORTS_LWA__REFRESH_TOKEN", "SPREPORTS_SELLER_ID"), None, "credentials", "no seller"),
    "a refresh token LWA refuses": ((), {"SPREPORTS_LWA__REFRESH_TOKEN": WRONG_REFRESH_TOKEN}, "credentials",
                                    "LWA refused the credentials of seller"),
    "a dead-letter queue but no queue": (("SPREPORTS_SQS__QUEUE_URL",), _dead_letters_only, "queue",
                                         "SPREPORTS_SQS__QUEUE_URL: not set, but SPREPORTS_SQS__DEAD_LETTER_QUEUE_URL"),
    "a relay metrics port but no queue": (("SPREPORTS_SQS__QUEUE_URL",), {"SPREPORTS_SQS__METRICS_PORT": "9100"},
                                          "queue", "SPREPORTS_SQS__QUEUE_URL: not set, but SPREPORTS_SQS__METRICS_PORT"),
    "a queue that does not exist": ((), _no_such_queue, "queue", "SQS refused to read the queue"),
    "a missing schedules file": ((), _missing_schedules, "schedules", "cannot read"),
    "an invalid schedules file": ((), _invalid_schedules, "schedules", "SPREPORTS_SCHEDULES_FILE"),
    "storage that cannot be written": ((), _storage_under_a_file, "storage", "is not a writable directory"),
    "a broker that does not answer": ((), _broker_down, "broker", "does not answer"),
}  # fmt: skip


@pytest.mark.parametrize("broken", list(BROKEN))
def test_each_broken_part_is_one_fail_line_and_exit_2(
    broken: str, deployment: dict[str, str], simulator: Simulator, redis_client: redis.Redis, tmp_path: Path
) -> None:
    removed, change, name, reason = BROKEN[broken]
    env = {key: value for key, value in deployment.items() if key not in removed}
    if isinstance(change, dict):
        env.update(change)
    elif change is not None:
        change(env, tmp_path)
    keys = set(redis_client.keys())
    result = check(env, tmp_path / "cwd")
    shown = result.stdout + result.stderr
    assert result.returncode == 2, shown
    failed = {key: detail for key, (verdict, detail) in verdicts(result).items() if verdict == "FAIL"}
    assert len(failed) == 1, shown
    [(failed_name, detail)] = failed.items()
    assert failed_name.split()[0] == name and reason in detail, shown
    error = result.stderr.strip().splitlines()[-1]
    assert error == f"spreports: error: {detail}", shown
    assert "Traceback" not in shown
    for secret in (simulator.client_secret, WRONG_REFRESH_TOKEN, "broker-secret", *simulator.refresh_tokens.values()):
        assert secret not in shown
    if name != "storage":
        assert_changed_nothing(tmp_path, keys, redis_client)


def test_a_deployment_without_a_queue_passes_the_queue_check_as_optional(
    deployment: dict[str, str], tmp_path: Path
) -> None:
    # Requests, schedules and the sweep need no notifications: no queue is a choice, not a failure.
    env = {key: value for key, value in deployment.items() if key != "SPREPORTS_SQS__QUEUE_URL"}
    result = check(env, tmp_path / "cwd")
    assert result.returncode == 0, result.stdout + result.stderr
    verdict, detail = verdicts(result)["queue"]
    assert verdict == "ok" and detail.startswith("no SPREPORTS_SQS__QUEUE_URL: no notifications are relayed"), detail
    assert detail.endswith("(optional)")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    with short_directory() as directory:
        yield directory


def test_without_a_broker_check_starts_no_redis_and_creates_nothing(short_dir: Path) -> None:
    result = check({"SPREPORTS_SQS__REPORT_TYPES": '["GET_MERCHANT_LISTINGS_ALL_DATA"]'}, short_dir)
    broker = verdicts(result)["broker"]
    assert broker[0] == "ok" and "the embedded Redis is not running" in broker[1], result.stdout
    assert list(short_dir.iterdir()) == []
    assert redis_servers_in(short_dir) == []


def test_a_running_embedded_redis_is_checked_and_left_running(short_dir: Path) -> None:
    embedded = EmbeddedRedis(short_dir / ".spreports")
    embedded.ensure_running()
    result = check({}, short_dir)
    broker = verdicts(result)["broker"]
    assert broker == ("ok", f"the embedded Redis in {short_dir / '.spreports'} answers"), result.stdout
    assert embedded.is_running()
    assert os.path.isdir(short_dir / ".spreports")
