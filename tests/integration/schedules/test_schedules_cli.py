"""``spreports schedules sync --dry-run | sync | list | cancel`` against the simulator, as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis

from spreports.settings import Settings
from spreports.simulator import Simulator
from tests.processes import product_env
from tests.sim import simulator_settings

LISTINGS = (
    '[[schedules]]\nreport_type = "GET_MERCHANT_LISTINGS_ALL_DATA"\nmarketplace_ids = ["ATVPDKIKX0DER"]\n'
    'period = "P1D"\n'
)
WRITES = ("createReportSchedule", "cancelReportSchedule")


@pytest.fixture
def settings(sim: Simulator, redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Settings:
    schedules = tmp_path / "schedules.toml"
    schedules.write_text(LISTINGS)
    return simulator_settings(sim, redis_url, tmp_path, schedules_file=schedules)  # type: ignore[no-any-return]


def test_dry_run_prune_list_and_cancel(settings: Settings, sim: Simulator, tmp_path: Path) -> None:
    env = product_env({**sim.env(), "SPREPORTS_BROKER_URL": str(settings.broker_url),
                       "SPREPORTS_SCHEDULES_FILE": str(settings.schedules_file)})  # fmt: skip

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "spreports.workers.cli", "schedules", *args], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done

    def writes() -> int:
        return sum(len(sim.requests(operation)) for operation in WRITES)

    # Amazon has an old schedule of the same type for another marketplace, which the file no longer wants.
    old = sim.world.put_schedule(sim.seller_id, "GET_MERCHANT_LISTINGS_ALL_DATA", ("A1PA6795UKMFR9",), "P7D", None, {})
    plan = run("sync", "--dry-run").stdout.splitlines()
    assert plan[0] == sim.seller_id
    assert plan[1].split()[:3] == ["create", "GET_MERCHANT_LISTINGS_ALL_DATA", "P1D"]
    assert plan[2].split()[0] == "unmanaged" and old.schedule_id in plan[2]
    assert "prune = true would cancel it" in plan[2]
    assert writes() == 0
    assert settings.schedules_file is not None
    settings.schedules_file.write_text("prune = true\n" + LISTINGS)
    assert run("sync", "--dry-run").stdout.splitlines()[2].split()[0] == "cancel"
    assert writes() == 0
    assert run("sync").stdout.strip() == f"{sim.seller_id}: 1 created, 0 already in place, 1 cancelled"
    assert [(s.marketplace_ids, s.period) for s in sim.world.schedules.values()] == [(("ATVPDKIKX0DER",), "P1D")]
    [line] = run("list").stdout.splitlines()
    seller, report_type, period, marketplaces, next_run, schedule_id, entry = line.split("\t")
    assert (seller, report_type, period, marketplaces) == (sim.seller_id, "GET_MERCHANT_LISTINGS_ALL_DATA", "P1D",
                                                          "ATVPDKIKX0DER")  # fmt: skip
    assert next_run.startswith("next 20") and entry == "schedule #1 (GET_MERCHANT_LISTINGS_ALL_DATA)"
    cancelled = run("cancel", schedule_id)
    assert cancelled.stdout.strip() == (
        f"cancelled schedule {schedule_id} of seller {sim.seller_id}: GET_MERCHANT_LISTINGS_ALL_DATA every P1D"
    )
    assert "still wants it" in cancelled.stderr
    assert sim.world.schedules == {}
