"""One backfill, one driving run: concurrent runs follow it, and a dead one is taken over where it stopped.

Every SP-API call of the simulator is slowed down, so that runs started together are all inside
createReport's request at once: runs that share the registry's claim would each create the window.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from spreports import names
from spreports.reports.backfill import BackfillPlan
from spreports.simulator import Simulator
from tests.processes import product_env, spreports_process, wait_for

ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
US = "ATVPDKIKX0DER"
RUNS = 5
WINDOWS = 4  # 30-day windows
LATENCY_SECONDS = 0.3


@pytest.fixture
def env(sim: Simulator, redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> dict[str, str]:
    """The product's environment: this simulator, and a Redis emptied of earlier tests' reports and claims."""
    return {
        **sim.env(),
        "SPREPORTS_BROKER_URL": redis_url,
        "SPREPORTS_STORAGE__URL": str(tmp_path / "reports"),
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
        "SPREPORTS_REQUESTS__FOLLOW_FIRST_SECONDS": "0.2",
        "SPREPORTS_REQUESTS__FOLLOW_MAX_SECONDS": "1",
        # Far longer than a busy machine delays a round: no live run is taken for dead here.
        "SPREPORTS_REQUESTS__BACKFILL_TAKEOVER_SECONDS": "30",
    }


def worker(env: dict[str, str], tmp_path: Path, concurrency: int) -> Any:
    node = f"backfill-{uuid.uuid4().hex[:6]}@%h"
    args = ("worker", "-Q", "control,documents", "-P", "threads", "-c", str(concurrency), "--without-mingle",
            "--without-gossip", "-n", node)  # fmt: skip
    return spreports_process(*args, env=env, cwd=tmp_path, log=tmp_path / "worker.log")


def backfill_command(env: dict[str, str], tmp_path: Path, first: str, last: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "spreports.workers.cli", "reports", "backfill", "--type", ORDERS,
               "--from", first, "--to", last, "-m", US]  # fmt: skip
    return subprocess.Popen(
        command, env=product_env(env), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def date_range() -> tuple[str, str]:
    last = (datetime.now(UTC) - timedelta(days=10)).date()
    return (last - timedelta(days=30 * WINDOWS - 1)).isoformat(), last.isoformat()


def created_ids(sim: Simulator) -> list[str]:
    with sim.core.world.lock:
        return [r.report_id for r in sim.core.world.reports.values() if r.report_type == ORDERS]


def windows_created(sim: Simulator) -> list[str]:
    """The dataStartTime of every report created (one entry per createReport that made one)."""
    return sorted(str(sim.report(report_id)["dataStartTime"]) for report_id in created_ids(sim))


def test_five_concurrent_runs_of_one_backfill_request_each_window_once(
    sim: Simulator, env: dict[str, str], tmp_path: Path
) -> None:
    sim.set_faults(slow_responses=100_000, slow_seconds=LATENCY_SECONDS)
    first, last = date_range()
    with worker(env, tmp_path, RUNS):
        commands = [backfill_command(env, tmp_path, first, last) for _ in range(RUNS)]
        outputs = [command.communicate(timeout=300) for command in commands]

    assert [command.returncode for command in commands] == [0] * RUNS, [err for _, err in outputs]
    assert len(sim.requests("createReport")) == WINDOWS
    created = windows_created(sim)
    assert len(created) == len(set(created)) == WINDOWS
    summaries = [json.loads(out) for out, _ in outputs]
    assert all(s["finished"] and s["stored"] == WINDOWS for s in summaries)
    # One run drove the backfill; every other one followed it, said so, and ended with the same windows.
    [driver] = {s["driven_by"] for s in summaries}
    assert sum(s["run_id"] == driver for s in summaries) == 1
    followers = [(s, err) for s, (_, err) in zip(summaries, outputs, strict=True) if s["run_id"] != driver]
    assert len(followers) == RUNS - 1
    assert all(f"followed run {driver}" in err for _, err in followers)
    assert all(s["windows"] == summaries[0]["windows"] for s, _ in followers)


def test_a_dead_run_is_taken_over_by_the_next_which_repeats_no_window(
    sim: Simulator, env: dict[str, str], tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    from spreports import backfill_reports
    from spreports.reports.backfill_runs import RunLease
    from spreports.settings import Settings

    env = {**env, "SPREPORTS_REQUESTS__BACKFILL_TAKEOVER_SECONDS": "1"}  # the dead run is taken over at once
    settings = Settings(**{"broker_url": redis_url, "seller_id": sim.seller_id})
    first, last = date_range()
    start, end = datetime.fromisoformat(first), datetime.fromisoformat(last)
    sim.set_faults(stuck_reports=1)  # the first window stays IN_PROGRESS while its run is dead
    with worker(env, tmp_path, 1):
        dead = backfill_reports(ORDERS, start.date(), end.date(), marketplace_ids=[US], settings=settings)
        wait_for(lambda: len(sim.requests("createReport")) == 1, timeout=60)
        plan = BackfillPlan.of(sim.seller_id, ORDERS, [US], start, end + timedelta(days=1))
        lease = RunLease(redis_client, plan.plan_id, grace=timedelta(seconds=1))
        wait_for(lambda: (held := lease.current()) is not None and held.run_id == dead.id, timeout=30)
    # The worker is gone, and the run's task with it: nothing will ever renew its lease.
    redis_client.delete(names.CONTROL_QUEUE, "unacked", "unacked_index")
    [stuck] = created_ids(sim)
    sim.finish_report(stuck)

    with worker(env, tmp_path, 1):
        command = backfill_command(env, tmp_path, first, last)
        out, err = command.communicate(timeout=300)

    assert command.returncode == 0, err
    summary = json.loads(out)
    assert summary["finished"] and summary["stored"] == WINDOWS
    assert summary["driven_by"] == summary["run_id"] != dead.id
    assert f"took over from run {dead.id}" in err
    created = windows_created(sim)
    assert len(sim.requests("createReport")) == WINDOWS and len(created) == len(set(created)) == WINDOWS
