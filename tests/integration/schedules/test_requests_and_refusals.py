"""Report types Amazon will not schedule: the simulator's refusal, the product's words, and request entries
that beat makes once per period on the simulator's accelerated clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import requests

from spreports.schedules.periods import period_start
from spreports.settings import Settings
from spreports.simulator import Simulator, start_simulator
from spreports.tasks.context import TaskContext, context
from tests.processes import wait_for
from tests.sim import lwa_token, quick_config, simulator_settings, validate_response

REQUEST_ONLY = "GET_REQUEST_ONLY_TEST_REPORT"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = start_simulator(quick_config(unschedulable_report_types=frozenset({REQUEST_ONLY}), speed=60.0))
    yield simulator
    simulator.stop()


@pytest.fixture
def settings(sim: Simulator, redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Settings:
    schedules = tmp_path / "schedules.toml"
    schedules.write_text(
        f'[[schedules]]\nreport_type = "{REQUEST_ONLY}"\nmarketplace_ids = ["ATVPDKIKX0DER"]\nperiod = "P1D"\n\n'
        '[[schedules]]\nreport_type = "GET_MERCHANT_LISTINGS_ALL_DATA"\nmarketplace_ids = ["ATVPDKIKX0DER"]\n'
        'period = "P1D"\nnext_report_creation_time = 2025-01-01T02:00:00-08:00\n\n'
        f'[[requests]]\nreport_type = "{REQUEST_ONLY}"\nmarketplace_ids = ["ATVPDKIKX0DER"]\n'
        'every = "P1D"\nwindow = "previous day"\nreport_options = { dateGranularity = "DAY" }\n'
    )
    return simulator_settings(sim, redis_url, tmp_path, schedules_file=schedules)  # type: ignore[no-any-return]


def _create(sim: Simulator, body: dict[str, object]) -> requests.Response:
    return requests.post(
        f"{sim.url}/reports/2021-06-30/schedules",
        json=body,
        headers={"x-amz-access-token": lwa_token(sim)},
        timeout=30,
    )


def test_simulator_refuses_unschedulable_types_and_echoes_the_next_creation_time(sim: Simulator) -> None:
    refused = _create(sim, {"reportType": REQUEST_ONLY, "marketplaceIds": ["ATVPDKIKX0DER"], "period": "P1D"})
    assert refused.status_code == 400
    [error] = validate_response("createReportSchedule", refused)["errors"]
    assert error["code"] == "InvalidInput"
    assert error["message"].startswith("Creation of report schedule type ")
    assert error["message"].endswith(" is not allowed at this time")
    assert sim.world.schedules == {}
    at = (sim.clock.now() + timedelta(days=2)).replace(microsecond=0)
    body = {"reportType": "GET_MERCHANT_LISTINGS_ALL_DATA", "marketplaceIds": ["ATVPDKIKX0DER"], "period": "P1D",
            "nextReportCreationTime": at.astimezone().isoformat()}  # fmt: skip
    created = validate_response("createReportSchedule", _create(sim, body))
    listed = requests.get(
        f"{sim.url}/reports/2021-06-30/schedules",
        params={"reportTypes": "GET_MERCHANT_LISTINGS_ALL_DATA"},
        headers={"x-amz-access-token": lwa_token(sim)},
        timeout=30,
    )
    [schedule] = validate_response("getReportSchedules", listed)["reportSchedules"]
    assert schedule["reportScheduleId"] == created["reportScheduleId"]
    assert datetime.fromisoformat(schedule["nextReportCreationTime"].replace("Z", "+00:00")) == at


def test_a_refusal_names_the_entry_and_the_other_schedules_are_made(
    celery_app, settings: Settings, sim: Simulator
) -> None:  # type: ignore[no-untyped-def]
    from spreports.tasks.schedules import sync_report_schedules

    result = sync_report_schedules.apply().get()
    counts = result[sim.seller_id]
    assert counts["created"] == 1
    [message] = counts["refused"]
    assert message.startswith(
        f"schedule #1 ({REQUEST_ONLY}): Amazon does not allow report schedules for {REQUEST_ONLY}"
    )
    assert "[[requests]] entry" in message
    # The next run was sent: 02:00 at -08:00 (10:00 UTC), on the simulator's next such day.
    [schedule] = sim.world.schedules.values()
    assert sim.clock.at(schedule.next_at).astimezone(UTC).strftime("%H:%M") == "10:00"
    # Amazon moving the schedule on (it fires) is no change: the next sync keeps it.
    sim.advance(3 * 86400)
    assert sync_report_schedules.apply().get()[sim.seller_id]["kept"] == 1
    assert len(sim.requests("createReportSchedule")) == 3  # the refused one twice, the good one once


def test_a_request_entry_fires_once_per_period_even_after_a_restart(  # type: ignore[no-untyped-def]
    celery_app, celery_worker, settings: Settings, sim: Simulator
) -> None:
    from spreports.tasks.schedules import check

    def created() -> list[dict[str, object]]:
        with sim.world.lock:
            return [r.to_json(sim.clock) for r in sim.world.reports.values() if r.report_type == REQUEST_ONLY]

    now = sim.clock.now()
    assert check(context(celery_app), celery_app, now)["requests"] == 1
    [first] = wait_for(lambda: created(), timeout=30)
    day = period_start(now, timedelta(days=1))
    assert first["dataStartTime"] == (day - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert first["dataEndTime"] == day.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    # Later in the same period, and from a restarted beat's worker (a fresh context, nothing in memory): nothing.
    assert "requests" not in check(context(celery_app), celery_app, sim.clock.now())
    assert "requests" not in check(TaskContext(settings), celery_app, sim.clock.now())
    sim.advance(86400)  # the next day on the simulator's clock
    assert check(TaskContext(settings), celery_app, sim.clock.now())["requests"] == 1
    wait_for(lambda: len(created()) == 2, timeout=30)
    assert "requests" not in check(TaskContext(settings), celery_app, sim.clock.now())
    # Reports created (a call refused because the day's jump expired the cached token does not count).
    assert [r.status for r in sim.requests("createReport") if r.status != 403] == [202, 202]
