"""``spreports reports list`` against the simulator: more than 10 types asked in groups of 10 (getReports takes
at most 10), and no page fetched beyond the limit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from spreports.simulator import Simulator
from tests.processes import product_env

LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"


def list_reports(sim: Simulator, redis_url: str, tmp_path: Path, *args: str) -> list[list[str]]:
    env = product_env({**sim.env(), "SPREPORTS_BROKER_URL": redis_url})
    done = subprocess.run([sys.executable, "-m", "spreports.workers.cli", "reports", "list", *args], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [line.split("\t") for line in done.stdout.splitlines()]


def pages(sim: Simulator) -> int:
    return sum(1 for r in sim.requests("getReports") if r.status == 200)


def test_more_than_ten_types_are_asked_in_groups_of_ten(sim: Simulator, redis_url: str, tmp_path: Path) -> None:
    types = [f"GET_SIMULATED_TYPE_{n:02d}" for n in range(12)]
    for report_type in types:
        sim.world.create_report(sim.seller_id, report_type, ("ATVPDKIKX0DER",))
    rows = list_reports(sim, redis_url, tmp_path, *(arg for t in types for arg in ("--type", t)))
    assert sorted(row[2] for row in rows) == types
    assert pages(sim) == 2


def test_the_listing_stops_at_its_limit_without_asking_for_another_page(
    sim: Simulator, redis_url: str, tmp_path: Path
) -> None:
    for _ in range(101):
        sim.world.create_report(sim.seller_id, LISTINGS, ("ATVPDKIKX0DER",))
    rows = list_reports(sim, redis_url, tmp_path, "--type", LISTINGS)
    assert len(rows) == 100
    assert pages(sim) == 1
    assert len(list_reports(sim, redis_url, tmp_path, "--type", LISTINGS, "--limit", "5")) == 5
    assert pages(sim) == 2
