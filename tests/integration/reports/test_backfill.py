"""A 90-day backfill of a 30-day-window type: three requests, a restart halfway, three stored documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from spreports import backfill_reports, names
from spreports.report_types import rules_for
from spreports.reports.backfill import BackfillPlan, BackfillProgress
from spreports.settings import Settings
from spreports.simulator import Simulator
from spreports.storage import open_storage
from tests.processes import wait_for
from tests.sim import simulator_settings

ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
US = ["ATVPDKIKX0DER"]


@pytest.fixture
def settings(sim: Simulator, redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Settings:
    # The interrupted run's successor takes it over a second after its missed round, not two minutes.
    quick = {"follow_first_seconds": 0.2, "follow_max_seconds": 1.0, "backfill_takeover_seconds": 1.0}
    return simulator_settings(sim, redis_url, tmp_path, requests=quick)  # type: ignore[no-any-return]


def created(sim: Simulator) -> list[dict[str, Any]]:
    reports = [sim.report(record_report_id) for record_report_id in _created_ids(sim)]
    return sorted(reports, key=lambda report: report["dataStartTime"])


def _created_ids(sim: Simulator) -> list[str]:
    with sim.core.world.lock:
        return [r.report_id for r in sim.core.world.reports.values() if r.report_type == ORDERS]


def worker(celery_app: Any) -> Any:
    from celery.contrib.testing.worker import start_worker

    celery_app.loader.import_default_modules()
    return start_worker(celery_app, pool="threads", concurrency=2, perform_ping_check=False,
                        queues=[names.CONTROL_QUEUE, names.DOCUMENTS_QUEUE], shutdown_timeout=20.0)  # fmt: skip


def test_a_backfill_requests_each_window_once_and_survives_a_restart(
    celery_app: Any, settings: Settings, sim: Simulator, redis_client: redis.Redis
) -> None:
    assert rules_for(ORDERS).max_window == timedelta(days=30)
    last = (datetime.now(UTC) - timedelta(days=10)).date()
    first = last - timedelta(days=89)  # 90 days, both ends included
    sim.set_faults(stuck_reports=1)  # the first window stays IN_PROGRESS while the fleet is stopped

    with worker(celery_app):
        backfill_reports(ORDERS, first, last, marketplace_ids=US, settings=settings)
        wait_for(lambda: len(_created_ids(sim)) == 1, timeout=60)
    # The fleet is gone, and its task with it (as if the backfill had been interrupted for good).
    redis_client.delete(names.CONTROL_QUEUE, "unacked", "unacked_index")
    assert len(_created_ids(sim)) == 1
    sim.finish_report(_created_ids(sim)[0])

    with worker(celery_app):
        # Started again with the same arguments: it takes the dead run over and goes on from the first window.
        again = backfill_reports(ORDERS, first, last, marketplace_ids=US, settings=settings)
        summary = again.get(timeout=120)

    assert summary["driven_by"] == again.id and summary["took_over_from"] not in (None, again.id)

    assert summary["total"] == 3 and summary["stored"] == 3 and summary["finished"]
    reports = created(sim)
    assert len(sim.requests("createReport")) == 3 and len(reports) == 3
    starts = [datetime.fromisoformat(r["dataStartTime"].replace("Z", "+00:00")) for r in reports]
    ends = [datetime.fromisoformat(r["dataEndTime"].replace("Z", "+00:00")) for r in reports]
    assert starts[0] == datetime(first.year, first.month, first.day, tzinfo=UTC)
    assert all(end - start <= timedelta(days=30) for start, end in zip(starts, ends, strict=True))
    assert all(ends[n] < starts[n + 1] for n in range(2)), "windows never overlap"
    assert ends[-1] == datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1, seconds=-1)
    storage = open_storage(settings)
    stored = {w["location"] for w in summary["windows"]}
    assert len(stored) == 3
    for window in summary["windows"]:
        manifest = storage.find(sim.seller_id, window["report_document_id"])
        assert manifest is not None and manifest.location == window["location"]
    # The progress the terminal shows is the task's result.
    plan = BackfillPlan.of(sim.seller_id, ORDERS, US, starts[0], ends[-1] + timedelta(seconds=1))
    assert BackfillProgress(redis_client, plan).summary()["stored"] == 3
