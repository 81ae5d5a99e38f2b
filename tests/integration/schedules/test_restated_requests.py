"""A ``[[requests]]`` entry with ``restate``: each period's window is pulled again ``restate`` later on the
simulator's clock, once, as a new report (never the first DONE one, however long DONE reports are reused),
and its document is stored beside the first as a new version whose manifest names the one it supersedes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from spreports.schedules.periods import period_start
from spreports.settings import Settings
from spreports.simulator import Simulator, start_simulator
from spreports.simulator.clock import iso
from spreports.storage import Manifest, open_storage
from spreports.tasks.context import TaskContext, context
from tests.integration.schedules.test_request_entry_documents import QUICK_FOLLOW
from tests.processes import wait_for
from tests.sim import quick_config, simulator_settings

# Any type can be restated; Sales and Traffic, the usual one, has a fleet-wide limit of one request per
# 15 real minutes, which a test of two requests would wait out.
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
DAY = timedelta(days=1)


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
        'window = "previous day"\nrestate = "P3D"\n'
    )
    # DONE reports are reused for 30 days here, so only the restatement's own rule keeps the first one out.
    requests = {**QUICK_FOLLOW, "reuse_done_seconds": 30 * 86400}
    return simulator_settings(sim, redis_url, tmp_path, schedules_file=schedules, requests=requests)  # type: ignore[no-any-return]


def test_a_restated_window_is_a_new_report_stored_beside_the_first_and_naming_it(
    celery_app: Any, celery_worker: Any, settings: Settings, sim: Simulator
) -> None:
    from spreports.tasks.schedules import check

    storage = open_storage(settings)
    # Checks at fixed points of the simulator's days, so that no run straddles a midnight.
    day = period_start(sim.clock.now(), DAY)
    window = (iso(day - DAY), iso(day))

    def reports_of_the_window() -> list[Any]:
        with sim.world.lock:
            found = [r for r in sim.world.reports.values() if (r.data_start, r.data_end) == window]
        return sorted(found, key=lambda r: r.created)

    def stored(count: int) -> list[Manifest] | None:
        reports = reports_of_the_window()
        manifests = [storage.find(sim.seller_id, r.document_id) for r in reports if r.document_id]
        done = [m for m in manifests if m is not None]
        return done if len(done) == count else None

    assert check(context(celery_app), celery_app, day + timedelta(hours=1))["requests"] == 1
    [first] = wait_for(lambda: stored(1), timeout=60)
    assert first.supersedes is None
    assert "requests" not in check(context(celery_app), celery_app, day + timedelta(hours=2))

    sim.advance(3 * 86400)  # three days on: the window's figures have settled
    restate_at = day + 3 * DAY + timedelta(hours=1)
    # The restatement of the first day, and the fourth day's own first pull (its window is another one).
    assert check(TaskContext(settings), celery_app, restate_at)["requests"] == 2
    earlier, restated = wait_for(lambda: stored(2), timeout=60)
    # A restarted beat, later that day: nothing is pulled again.
    assert "requests" not in check(TaskContext(settings), celery_app, restate_at + timedelta(hours=5))

    first_report, second_report = reports_of_the_window()
    assert earlier == first and restated.report_id == second_report.report_id != first_report.report_id
    assert restated.report_document_id != first.report_document_id
    assert restated.supersedes == first.report_document_id
    assert Path(restated.location).parent == Path(first.location).parent  # the same folder
    assert sim.clock.at(second_report.created) - sim.clock.at(first_report.created) >= 3 * DAY - timedelta(hours=1)
