"""A ``[[requests]]`` entry ends with its stored document with no SQS at all: beat's check queues the
request chained to the follower, and a real worker runs both against the simulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from spreports.settings import Settings
from spreports.simulator import Simulator, start_simulator
from spreports.storage import Manifest, open_storage
from spreports.tasks.context import context
from tests.processes import wait_for
from tests.sim import quick_config, simulator_settings

LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
# Polls every 0.2 s at first, at most every second: the simulator's reports finish in a fraction of one.
QUICK_FOLLOW = {"follow_first_seconds": 0.2, "follow_max_seconds": 1.0}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = start_simulator(quick_config(speed=60.0))
    yield simulator
    simulator.stop()


@pytest.fixture
def settings(sim: Simulator, redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Settings:
    schedules = tmp_path / "schedules.toml"
    schedules.write_text(
        f'[[requests]]\nreport_type = "{LISTINGS}"\nmarketplace_ids = ["ATVPDKIKX0DER"]\nevery = "P1D"\n'
        'window = "previous day"\n'
    )
    # No SQS queue and no relay anywhere: the document can only come through the chained follower.
    return simulator_settings(sim, redis_url, tmp_path, schedules_file=schedules, requests=QUICK_FOLLOW)  # type: ignore[no-any-return]


def test_a_request_entrys_document_is_stored_without_notifications(
    celery_app: Any, celery_worker: Any, settings: Settings, sim: Simulator
) -> None:
    from spreports.tasks.schedules import check

    assert check(context(celery_app), celery_app, sim.clock.now())["requests"] == 1
    storage = open_storage(settings)

    def stored() -> Manifest | None:
        with sim.world.lock:
            documents = [r.document_id for r in sim.world.reports.values() if r.report_type == LISTINGS]
        return next((m for d in documents if d and (m := storage.find(sim.seller_id, d))), None)

    manifest = wait_for(stored, timeout=60)
    [report] = [r for r in sim.world.reports.values() if r.report_type == LISTINGS]
    assert manifest.report_id == report.report_id
    assert sum(1 for r in sim.requests("createReport") if r.status == 202) == 1
