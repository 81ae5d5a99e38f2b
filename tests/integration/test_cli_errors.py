"""Every command fails the same way on the same mistake: one line, exit status 2, no traceback, no secret.

The mistakes: (a) a bad setting, (b) a broker that does not answer, (c) storage that cannot be written
(for the commands that write). Each command runs as the user runs it, ``python -m spreports.workers.cli``
in a directory of its own, with a configured deployment around it: a seller, LWA credentials, a
schedules file, a queue. The broker URL carries a password and the settings carry a client secret and
a refresh token: none of them may appear in what the command prints. Every address that a command
could call (LWA, the SP-API, SQS) is a closed port on loopback, so nothing leaves this machine.

Also here, as it needs a process of its own: ``spreports --help`` imports click and the command line,
nothing else of the product or of its libraries.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import free_port, unavailable

BROKER_PASSWORD = "hunter2-broker-password"
CLIENT_SECRET = "amzn1.oa2-cs.v1.s3cr3t-client-secret"
REFRESH_TOKEN = "Atzr|s3cr3t-refresh-token"
SECRETS = (BROKER_PASSWORD, CLIENT_SECRET, REFRESH_TOKEN)

SCHEDULES = """
[[schedules]]
report_type = "GET_MERCHANT_LISTINGS_ALL_DATA"
marketplace_ids = ["ATVPDKIKX0DER"]
period = "P1D"
"""


@dataclass(frozen=True)
class Command:
    """A command line and what it does: talks to the broker, and what it writes (storage or a file)."""

    args: tuple[str, ...]
    broker: bool = True
    writes: str | None = None  # "storage" or "schedule"

    @property
    def id(self) -> str:
        return " ".join(arg for arg in self.args if not arg.startswith(("--port", "--address", "/")))


SCHEDULE_ARG = "{schedule}"
COMMANDS = [
    Command(("config",), broker=False),
    Command(("check",), writes="storage"),
    Command(("redis", "start"), broker=False),
    Command(("worker", "-Q", "documents", "-c", "1", "-n", "cli-errors@%h"), writes="storage"),
    Command(("beat", "-s", SCHEDULE_ARG), writes="schedule"),
    Command(("flower", "--port={port}", "--address=127.0.0.1")),
    Command(("relay",)),
    Command(("relay", "--check")),
    Command(("reports", "download", "--document", "D1", "--local"), writes="storage"),
    Command(("reports", "download", "--document", "D1", "--timeout", "5")),
    Command(("reports", "request", "--type", "GET_MERCHANT_LISTINGS_ALL_DATA", "--timeout", "5")),
    Command(("schedules", "sync")),
    Command(("schedules", "list")),
    Command(("notifications", "status")),
    Command(("notifications", "setup", "--queue-arn", "arn:aws:sqs:us-east-1:123456789012:q")),
    Command(("simulator", "--port", "0"), broker=False),
    Command(("demo", "--timeout", "20"), writes="storage"),
    Command(("data", "sql", "SELECT 1"), broker=False),
]


def by_id(commands: list[Command]) -> list[object]:
    return [pytest.param(command, id=command.id) for command in commands]


def spreports(
    command: Command, env: dict[str, str], cwd: Path, *, schedule: Path | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """Run the command in its own session; on a time-out kill the whole group (a worker's children too)."""
    args = [
        arg.replace(SCHEDULE_ARG, str(schedule or cwd / "celerybeat-schedule")).replace("{port}", str(free_port()))
        for arg in command.args
    ]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SPREPORTS_") and k != "PYTHONPATH"}
    full_env.update(env)
    process = subprocess.Popen(
        [sys.executable, "-m", "spreports.workers.cli", *args], env=full_env, cwd=cwd, text=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"spreports {' '.join(args)} still ran after {timeout} s:\n{stderr[-3000:]}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def assert_one_error_line(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Exit 2, one stderr line ``spreports: error: ...`` holding ``expected``, no traceback, no secret."""
    shown = f"exit {result.returncode}, stderr:\n{result.stderr[-3000:]}"
    assert result.returncode == 2, shown
    # ``check`` shows its warnings (a Redis that forgets...) beside its failures: the error is the one other line.
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("spreports: warning: ")]
    assert len(lines) == 1, shown
    assert lines[0].startswith("spreports: error: "), shown
    assert "Traceback" not in result.stderr + result.stdout, shown
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr, f"a secret was printed: {shown}\nstdout:\n{result.stdout}"
    for part in expected:
        assert part in lines[0], shown
    return lines[0]


@pytest.fixture
def deployment(tmp_path: Path) -> dict[str, str]:
    """A configured deployment whose outside services are all closed ports on loopback."""
    schedules = tmp_path / "schedules.toml"
    schedules.write_text(SCHEDULES)
    closed = f"http://127.0.0.1:{free_port()}"
    (tmp_path / "cwd").mkdir()
    return {
        "SPREPORTS_LWA__CLIENT_ID": "amzn1.application-oa2-client.cli-errors",
        "SPREPORTS_LWA__CLIENT_SECRET": CLIENT_SECRET,
        "SPREPORTS_LWA__REFRESH_TOKEN": REFRESH_TOKEN,
        "SPREPORTS_LWA__TOKEN_URL": f"{closed}/auth/o2/token",
        "SPREPORTS_SPAPI__ENDPOINT": closed,
        "SPREPORTS_SELLER_ID": "A1CLIERRORS",
        "SPREPORTS_SCHEDULES_FILE": str(schedules),
        "SPREPORTS_SQS__QUEUE_URL": f"{closed}/123456789012/spreports",
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
        "SPREPORTS_STORAGE__URL": str(tmp_path / "reports"),
        "AWS_ENDPOINT_URL_SQS": closed,
        "AWS_ENDPOINT_URL_S3": closed,
    }


# --- (a) a bad setting ------------------------------------------------------------------------------

BAD_SETTINGS = {
    "log level": ({"SPREPORTS_LOG_LEVEL": "LOUD"}, "SPREPORTS_LOG_LEVEL:"),
    "unknown variable": ({"SPREPORTS_LOG_LEVELS": "INFO"}, "SPREPORTS_LOG_LEVELS: unknown setting"),
}


@pytest.mark.parametrize("bad", list(BAD_SETTINGS))
@pytest.mark.parametrize("command", by_id(COMMANDS))
def test_a_bad_setting(command: Command, bad: str, deployment: dict[str, str], tmp_path: Path) -> None:
    setting, expected = BAD_SETTINGS[bad]
    broker = f"redis://:{BROKER_PASSWORD}@127.0.0.1:{free_port()}/0"
    result = spreports(command, {**deployment, "SPREPORTS_BROKER_URL": broker, **setting}, tmp_path / "cwd")
    assert_one_error_line(result, expected)


# --- (b) a broker that does not answer ---------------------------------------------------------------


@pytest.mark.parametrize("command", by_id([c for c in COMMANDS if c.broker]))
def test_a_broker_that_does_not_answer(command: Command, deployment: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    env = {**deployment, "SPREPORTS_BROKER_URL": f"redis://:{BROKER_PASSWORD}@127.0.0.1:{port}/0"}
    result = spreports(command, env, tmp_path / "cwd")
    assert_one_error_line(result, f"Redis at redis://127.0.0.1:{port} does not answer")


def test_config_needs_no_broker_and_masks_its_password(deployment: dict[str, str], tmp_path: Path) -> None:
    env = {**deployment, "SPREPORTS_BROKER_URL": f"redis://:{BROKER_PASSWORD}@127.0.0.1:{free_port()}/0"}
    result = spreports(Command(("config",)), env, tmp_path / "cwd")
    assert result.returncode == 0, result.stderr
    assert "SPREPORTS_BROKER_URL=redis://:**********@127.0.0.1" in result.stdout
    assert not any(secret in result.stdout + result.stderr for secret in SECRETS)


# --- (c) storage that cannot be written --------------------------------------------------------------


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody may write in: mode 555, and for root (who ignores modes) the immutable flag."""
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o555)
    immutable = False
    if os.geteuid() == 0:
        chattr = shutil.which("chattr")
        immutable = (
            chattr is not None and subprocess.run([chattr, "+i", str(directory)], capture_output=True).returncode == 0
        )
        if not immutable:
            unavailable("running as root, and `chattr +i` cannot make a directory read-only here")
    try:
        yield directory
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(directory)], check=True)
        directory.chmod(0o755)


def unwritable(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A directory that cannot be written: under a regular file, or read-only."""
    if kind == "a file in the way":
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory")
        return blocker / "dir"
    directory: Path = request.getfixturevalue("read_only_dir")
    return directory


@pytest.mark.parametrize("kind", ["a file in the way", "read-only"])
@pytest.mark.parametrize("command", by_id([c for c in COMMANDS if c.writes]))
def test_storage_that_cannot_be_written(
    command: Command,
    kind: str,
    deployment: dict[str, str],
    redis_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    where = unwritable(kind, tmp_path, request)
    env = {**deployment, "SPREPORTS_BROKER_URL": redis_url}
    if command.writes == "storage":
        env["SPREPORTS_STORAGE__URL"] = str(where / "reports") if kind == "a file in the way" else str(where)
        result = spreports(command, env, tmp_path / "cwd")
        assert_one_error_line(result, "SPREPORTS_STORAGE__URL: ", "is not a writable directory")
    else:
        result = spreports(command, env, tmp_path / "cwd", schedule=where / "celerybeat-schedule")
        assert_one_error_line(result, f"the beat schedule {where / 'celerybeat-schedule'} cannot be written")


@pytest.mark.parametrize("command", by_id([Command(("redis", "start")), Command(("check",))]))
def test_a_data_directory_that_cannot_be_made(command: Command, tmp_path: Path) -> None:
    # No broker configured: the command would start the embedded Redis in the data directory.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = spreports(command, {"SPREPORTS_DATA_DIR": str(blocker / "data")}, tmp_path)
    assert_one_error_line(result, "SPREPORTS_DATA_DIR: cannot create")


# --- spreports --help -------------------------------------------------------------------------------

HELP_IMPORTS = """
import sys
before = set(sys.modules)
from spreports.workers.cli import run
try:
    run(["--help"])
except SystemExit as exit:
    code = exit.code
loaded = sorted(set(sys.modules) - before)
import json
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""
# The package's public API is imported with it (spreports.enqueue_document, ...): the producers and the
# error tree, which load no third-party module until a producer is called.
COMMAND_LINE = {
    "spreports",
    "spreports.errors",
    "spreports.workers",
    "spreports.workers.cli",
    "spreports.workers.cli.common",
    "spreports.workers.producers",
}


def test_help_imports_only_click_and_the_command_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", HELP_IMPORTS], capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False
    )
    outcome = json.loads(result.stderr.strip().splitlines()[-1])
    assert outcome["code"] == 0
    assert "worker" in result.stdout
    beyond = [
        name
        for name in outcome["loaded"]
        if name.split(".")[0] not in sys.stdlib_module_names
        and name.split(".")[0] != "click"
        and name not in COMMAND_LINE
    ]
    assert beyond == [], f"spreports --help imported {beyond}"
