"""``spreports metrics`` beyond loopback asks for a login, or refuses to start.

The real command on a real Redis: ``--host 0.0.0.0`` (or any address not this host's loopback) without
``SPREPORTS_METRICS_BASIC_AUTH`` exits 2 with one line saying how; with it, ``/metrics`` answers 401
without the login (or with a wrong one) and 200 with it, as Prometheus' ``basic_auth`` sends it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.processes import product_env, spreports_process, wait_for
from tests.servers import free_port

PASSWORD = "4f1c0b9e7d2a6c3e"

OPEN_BEYOND_LOOPBACK = ["0.0.0.0", "::", "192.0.2.10", "metrics.example.com"]


@pytest.mark.parametrize("host", OPEN_BEYOND_LOOPBACK)
def test_metrics_beyond_loopback_without_a_login_refuses_to_start(host: str, redis_url: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "spreports.workers.cli", "metrics", "--host", host, "--port", str(free_port())],
        env=product_env({"SPREPORTS_BROKER_URL": redis_url}), cwd=tmp_path, capture_output=True, text=True,
        timeout=60, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    shown = f"exit {result.returncode}\n{result.stderr[-2000:]}"
    assert result.returncode == 2, shown
    [line] = result.stderr.strip().splitlines()
    assert line == (
        f"spreports: error: metrics would listen on {host} with no login: set SPREPORTS_METRICS_BASIC_AUTH="
        "user:password (and basic_auth in Prometheus' scrape config), or listen on loopback only (--host 127.0.0.1)"
    ), shown


def test_metrics_with_a_login_answer_401_without_it_and_200_with_it(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {"SPREPORTS_BROKER_URL": redis_url, "SPREPORTS_METRICS_BASIC_AUTH": f"prometheus:{PASSWORD}"}
    url = f"http://127.0.0.1:{port}/metrics"

    def answers() -> list[requests.Response] | None:
        try:
            return [requests.get(url, timeout=5)]  # in a list: a 401 response is falsy
        except requests.ConnectionError:
            return None

    with spreports_process("metrics", "--host", "0.0.0.0", "--port", str(port), env=env, cwd=tmp_path):
        [anonymous] = wait_for(answers, timeout=60)
        wrong = requests.get(url, timeout=5, auth=("prometheus", "not-" + PASSWORD))
        wrong_user = requests.get(url, timeout=5, auth=("grafana", PASSWORD))
        bearer = requests.get(url, timeout=5, headers={"Authorization": f"Bearer {PASSWORD}"})
        right = requests.get(url, timeout=5, auth=("prometheus", PASSWORD))
    for refused in (anonymous, wrong, wrong_user, bearer):
        assert refused.status_code == 401, refused.text
        assert refused.headers["WWW-Authenticate"] == 'Basic realm="spreports metrics"'
        assert "spreports_" not in refused.text
    assert right.status_code == 200
    assert "spreports_redis_up 1.0" in right.text
    log = (tmp_path / "metrics.log").read_text()
    assert f"serving the fleet's metrics on http://0.0.0.0:{port}/metrics (login required)" in log, log
    assert PASSWORD not in log
