"""A bad setting stops a process at start with one line naming it, never after it said it was ready.

The real commands (``python -m spreports.workers.cli``), as users run them: a worker, the relay, beat and
``check`` with token keys that are no Fernet keys exit 2 with one ``spreports: error:`` line naming
``SPREPORTS_TOKEN_KEYS`` and not the key. Before, the worker started, said ready and failed every
document "for good" into the ledger.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import product_env
from tests.servers import free_port

TRUNCATED_KEY = "x8QvhXxmyHe0xzcibttQbLQmPSjg5cxYxQBSvAV-3e"
BAD_KEYS = ['["not-a-fernet-key"]', '[""]', f'["{TRUNCATED_KEY}"]']
COMMANDS = [("worker", "-Q", "documents", "-c", "1"), ("relay",), ("beat",), ("check",)]


@pytest.mark.parametrize("keys", BAD_KEYS)
@pytest.mark.parametrize("command", COMMANDS, ids=[command[0] for command in COMMANDS])
def test_a_bad_token_key_stops_the_process_at_start_with_one_line(
    command: tuple[str, ...], keys: str, tmp_path: Path
) -> None:
    env = product_env(
        {
            "SPREPORTS_TOKEN_KEYS": keys,
            # Had the settings passed, the process would go on to this broker (a closed port) and say so.
            "SPREPORTS_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
            "SPREPORTS_SQS__QUEUE_URL": f"http://127.0.0.1:{free_port()}/000000000000/q",
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "spreports.workers.cli", *command],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    shown = f"exit {result.returncode}\nstdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-2000:]}"
    assert result.returncode == 2, shown
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("spreports: error: SPREPORTS_TOKEN_KEYS: the key is not a Fernet key"), shown
    assert result.stdout == "", shown  # check printed no verdict: it stopped before its first check
    for secret in ("not-a-fernet-key", TRUNCATED_KEY):
        assert secret not in result.stdout + result.stderr
