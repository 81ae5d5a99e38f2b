"""``spreports simulator`` runs with one command and prints the environment to use."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

SPREPORTS = str(Path(sys.executable).with_name("spreports"))


def start(
    tmp_path: Path, *args: str, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], dict[str, str], list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPREPORTS_")}
    env.update(PYTHONUNBUFFERED="1", **(extra_env or {}))
    process = subprocess.Popen([SPREPORTS, "simulator", "--port", "0", *args], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    lines: list[str] = []
    exported: dict[str, str] = {}
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.strip().startswith("export "):
            name, _, value = line.strip().removeprefix("export ").partition("=")
            exported[name] = shlex.split(value)[0]
        if line.startswith("Notifications:"):
            break
    return process, exported, lines


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out
    return out


def test_prints_where_it_listens_and_the_environment(tmp_path: Path) -> None:
    process, exported, lines = start(tmp_path, "--speed", "10")
    try:
        assert lines[0].startswith("SP-API simulator listening on http://127.0.0.1:"), lines
        url = lines[0].split()[4]
        assert exported["SPREPORTS_SPAPI__ENDPOINT"] == url
        assert exported["SPREPORTS_DOCUMENTS__ALLOWED_HOSTS"] == f'["{url}"]'
        token = requests.post(exported["SPREPORTS_LWA__TOKEN_URL"], timeout=30, data={
            "grant_type": "refresh_token", "refresh_token": exported["SPREPORTS_LWA__REFRESH_TOKEN"],
            "client_id": exported["SPREPORTS_LWA__CLIENT_ID"], "client_secret": exported["SPREPORTS_LWA__CLIENT_SECRET"],
        })  # fmt: skip
        assert token.status_code == 200
        rate = requests.get(f"{url}/reports/2021-06-30/reports", params={"reportTypes": "X_Y"},
                            headers={"x-amz-access-token": token.json()["access_token"]}, timeout=30)  # fmt: skip
        assert float(rate.headers["x-amzn-RateLimit-Limit"]) == 0.222
    finally:
        assert "stopping" in stop(process)


def test_subscribes_the_configured_queue(tmp_path: Path, sqs_queue_url: str) -> None:
    process, exported, lines = start(
        tmp_path, extra_env={"SPREPORTS_SQS__QUEUE_URL": sqs_queue_url, "SPREPORTS_LWA__CLIENT_ID": "mine"}
    )
    try:
        assert lines[-1] == f"Notifications: REPORT_PROCESSING_FINISHED -> {sqs_queue_url}"
        assert (
            "SPREPORTS_LWA__CLIENT_ID" not in exported
            and "  # SPREPORTS_LWA__CLIENT_ID: as already configured" in lines
        )
    finally:
        stop(process)


def test_a_busy_port_is_one_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPREPORTS_")}
        result = subprocess.run([SPREPORTS, "simulator", "--port", str(port)], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert (
        result.stderr.startswith("spreports: error: cannot listen on 127.0.0.1:") and "Traceback" not in result.stderr
    )


def test_stops_on_sigint_or_sigterm_even_started_as_a_background_job(tmp_path: Path) -> None:
    # `spreports simulator &` in a script: the shell starts it with SIGINT (and SIGQUIT) ignored.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the child as a background job's
        try:
            process, _, lines = start(tmp_path)
        finally:
            signal.signal(signal.SIGINT, previous)
        assert lines and lines[-1].startswith("Notifications:"), lines
        process.send_signal(stop_signal)
        out, _ = process.communicate(timeout=30)
        assert process.returncode == 0 and "stopping" in out, (stop_signal, out)
