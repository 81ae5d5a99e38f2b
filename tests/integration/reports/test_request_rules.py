"""Requests Amazon's rules forbid are refused in one line before any SP-API call: Sales and Traffic for
two marketplaces, by the command and by the Python producer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from spreports import request_report
from spreports.errors import InvalidRequest
from spreports.settings import Settings
from spreports.simulator import Simulator
from tests.processes import product_env
from tests.sim import simulator_settings

S_AND_T = "GET_SALES_AND_TRAFFIC_REPORT"
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
TWO = ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"]


@pytest.fixture
def settings(sim: Simulator, redis_url: str, tmp_path: Path) -> Settings:
    return simulator_settings(sim, redis_url, tmp_path)  # type: ignore[no-any-return]


def test_the_command_refuses_sales_and_traffic_for_two_marketplaces_in_one_line(
    sim: Simulator, settings: Settings, tmp_path: Path
) -> None:
    env = product_env({**sim.env(), "SPREPORTS_BROKER_URL": str(settings.broker_url)})
    marketplaces = [arg for m in TWO for arg in ("-m", m)]
    done = subprocess.run(
        [sys.executable, "-m", "spreports.workers.cli", "reports", "request", "--type", S_AND_T, *marketplaces, "--timeout", "10"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert f"{S_AND_T} takes at most 1 marketplace(s) per request" in lines[0]
    assert sim.requests() == []  # not one SP-API call (nor an LWA token)


def test_the_producer_refuses_it_before_sending_a_task(sim: Simulator, settings: Settings) -> None:
    with pytest.raises(InvalidRequest, match="at most 1 marketplace"):
        request_report(S_AND_T, marketplace_ids=TWO, settings=settings)
    assert sim.requests() == []
