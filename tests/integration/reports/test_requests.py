"""Requests from code to the stored document, with no SQS at all: a real worker, the simulator, no relay.

A request reuses an identical report in flight or fresh (one createReport in the simulator's log),
follows the report with getReport on growing countdowns and ends with the stored document's summary,
or with a clear error for CANCELLED and FATAL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from spreports import request_report
from spreports.errors import ReportCancelled, ReportFatal
from spreports.reports import obtain
from spreports.reports.cooldowns import cooldown_until
from spreports.reports.obtain import KEY_PREFIX
from spreports.settings import Settings
from spreports.simulator import Outcomes, Simulator, start_simulator
from spreports.simulator.world import FATAL_REASONS
from spreports.storage import open_storage
from tests.processes import wait_for
from tests.sim import quick_config, simulator_settings

LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
US = ["ATVPDKIKX0DER"]
# Polls every 0.2 s at first, at most every second: the simulator's reports finish in a fraction of one.
QUICK_FOLLOW = {"follow_first_seconds": 0.2, "follow_max_seconds": 1.0}


@pytest.fixture(autouse=True)
def quick_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixed waits of the in-process worker's report tasks, shortened (the simulator answers at once).

    A FATAL report's follower comes back for its error document's reason every 0.2 s instead of every
    5 s, as many times more often (the same 30 s in all); a request that finds an identical one pending
    looks again after 0.5 s instead of 10 s. The worker is a thread of this process: these are its values.
    """
    from spreports.tasks import reports as report_tasks

    budget = report_tasks.FATAL_REASON_POLLS * report_tasks.FATAL_REASON_WAIT_SECONDS  # seconds in all
    monkeypatch.setattr(report_tasks, "FATAL_REASON_WAIT_SECONDS", 0.2)
    monkeypatch.setattr(report_tasks, "FATAL_REASON_POLLS", int(budget / 0.2))
    monkeypatch.setattr(obtain, "PENDING_RETRY_SECONDS", 0.5)


@pytest.fixture
def outcomes() -> Outcomes:
    return Outcomes(queue_seconds=0.05, processing_seconds=0.1)


@pytest.fixture
def sim(outcomes: Outcomes) -> Iterator[Simulator]:
    simulator = start_simulator(quick_config(outcomes=outcomes))
    yield simulator
    simulator.stop()


@pytest.fixture
def settings(sim: Simulator, redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Settings:
    # No SQS queue anywhere: the document can only come through the follower.
    return simulator_settings(sim, redis_url, tmp_path, requests=QUICK_FOLLOW)  # type: ignore[no-any-return]


def created(sim: Simulator) -> int:
    return sum(1 for record in sim.requests("createReport") if record.status == 202)


def test_request_report_get_returns_the_stored_document(celery_worker: Any, settings: Settings, sim: Simulator) -> None:
    result = request_report(LISTINGS, marketplace_ids=US, settings=settings)
    summary = result.get(timeout=60)
    report = result.parent.get(timeout=5)
    assert report["reused"] == "new"
    manifest = open_storage(settings).find(sim.seller_id, summary["report_document_id"])
    assert manifest is not None
    assert manifest.report_id == report["report_id"]
    assert summary["location"] == manifest.location and Path(manifest.location).is_file()
    assert summary["sha256"] == manifest.sha256 and summary["bytes_out"] > 0
    assert created(sim) == 1
    assert not sim.notifications()  # nothing came through a relay


def test_a_duplicate_request_reuses_the_report_in_flight(
    celery_worker: Any, settings: Settings, sim: Simulator
) -> None:
    sim.set_faults(stuck_reports=1)  # the first report stays IN_PROGRESS until the test finishes it
    first = request_report(LISTINGS, marketplace_ids=US, settings=settings)
    second = request_report(LISTINGS, marketplace_ids=list(reversed(US)), settings=settings)
    ids = {first.parent.get(timeout=60)["report_id"], second.parent.get(timeout=60)["report_id"]}
    assert len(ids) == 1, "both callers follow one report"
    assert created(sim) == 1
    sim.finish_report(ids.pop())
    one, two = first.get(timeout=60), second.get(timeout=60)
    assert one["location"] == two["location"] and one["sha256"] == two["sha256"]
    assert len(sim.requests("createReport")) == 1
    # Stored once: the second retrieval found the first one's manifest.
    assert len([r for r in sim.requests("getReportDocument") if r.status == 200]) == 1


def test_a_fresh_done_report_is_reused_even_when_the_registry_forgot_it(
    celery_worker: Any, settings: Settings, sim: Simulator, redis_client: redis.Redis
) -> None:
    window = {"data_start_time": "2026-01-01T00:00:00Z", "data_end_time": "2026-01-07T23:59:59Z"}
    first = request_report(LISTINGS, marketplace_ids=US, settings=settings, **window).get(timeout=60)
    # The fleet's registry is gone (expired, flushed): Amazon's own list (getReports) still knows the report.
    for key in redis_client.scan_iter(f"{KEY_PREFIX}*"):
        redis_client.delete(key)
    again = request_report(LISTINGS, marketplace_ids=US, settings=settings, **window)
    assert again.parent.get(timeout=60)["reused"] == "done"
    assert again.get(timeout=60)["location"] == first["location"]
    assert created(sim) == 1
    # Another window is another report.
    other = request_report(LISTINGS, marketplace_ids=US, settings=settings, data_start_time="2026-01-08T00:00:00Z")
    assert other.parent.get(timeout=60)["reused"] == "new"
    assert other.get(timeout=60)["location"] != first["location"]
    assert created(sim) == 2


@pytest.mark.parametrize("outcomes", [Outcomes(done=0, cancelled=1, queue_seconds=0.05, processing_seconds=0.1)])
def test_a_cancelled_report_is_a_clear_error(celery_worker: Any, settings: Settings, sim: Simulator) -> None:
    result = request_report(LISTINGS, marketplace_ids=US, settings=settings)
    with pytest.raises(ReportCancelled, match=r"CANCELLED: Amazon found no data"):
        result.get(timeout=60)


@pytest.mark.parametrize("outcomes", [Outcomes(done=0, fatal=1, queue_seconds=0.05, processing_seconds=0.1)])
def test_a_fatal_report_is_a_clear_error(celery_worker: Any, settings: Settings, sim: Simulator) -> None:
    result = request_report(LISTINGS, marketplace_ids=US, settings=settings)
    report_id = result.parent.get(timeout=60)["report_id"]
    with pytest.raises(ReportFatal, match=rf"report {report_id} of seller {sim.seller_id} ended FATAL") as failed:
        result.get(timeout=60)
    # Amazon's reason, read from the error document, is in the error the caller gets.
    assert any(str(failed.value).endswith(f": {reason}") for reason in FATAL_REASONS), str(failed.value)
    # Its error document is kept (under _errors/), as the relay would have kept it.
    error_document = sim.report(report_id)["reportDocumentId"]
    manifest = wait_for(lambda: open_storage(settings).find(sim.seller_id, error_document), timeout=60)
    assert manifest.processing_status == "FATAL"


@pytest.mark.parametrize("outcomes", [Outcomes(done=0, fatal=1, queue_seconds=0.05, processing_seconds=0.1)])
def test_a_request_during_a_fatal_cooldown_is_deferred_without_an_sp_api_call(
    celery_worker: Any, settings: Settings, sim: Simulator
) -> None:
    with pytest.raises(ReportFatal):
        request_report(LISTINGS, marketplace_ids=US, settings=settings).get(timeout=60)
    assert created(sim) == 1
    calls_before = len(sim.requests())
    # The same kind of report again, within the cooldown the FATAL started: deferred, nothing sent.
    again = request_report(LISTINGS, marketplace_ids=US, settings=settings)
    wait_for(lambda: again.parent.state == "RETRY", timeout=30)
    until = cooldown_until(redis.Redis.from_url(str(settings.broker_url)), sim.seller_id, LISTINGS)
    assert until is not None and until > datetime.now(UTC)
    assert created(sim) == 1
    assert [r.operation for r in sim.requests()[calls_before:]] == []  # not one SP-API call
    again.parent.revoke()


def test_the_shell_requests_and_waits_lists_and_backfills(
    celery_worker: Any, settings: Settings, sim: Simulator, tmp_path: Path
) -> None:
    import json
    import subprocess
    import sys
    from datetime import UTC, datetime, timedelta

    from tests.processes import product_env

    env = product_env({
        **sim.env(),
        "SPREPORTS_BROKER_URL": str(settings.broker_url),
        "SPREPORTS_STORAGE__URL": settings.storage.url,
        "SPREPORTS_REQUESTS__FOLLOW_FIRST_SECONDS": "0.2",
        "SPREPORTS_REQUESTS__FOLLOW_MAX_SECONDS": "1",
    })  # fmt: skip

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "spreports.workers.cli", "reports", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip

    waited = run("request", "--type", LISTINGS, "-m", US[0], "--wait")
    assert waited.returncode == 0, waited.stderr
    location = waited.stdout.split("stored at ", 1)[1].splitlines()[0]
    assert Path(location).is_file()

    listed = run("list", "--type", LISTINGS, "--status", "DONE")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [(row[2], row[3]) for row in rows] == [(LISTINGS, "DONE")]

    last = (datetime.now(UTC) - timedelta(days=3)).date()
    days = ["--from", str(last - timedelta(days=44)), "--to", str(last)]
    backfilled = run("backfill", "--type", "GET_FLAT_FILE_OPEN_LISTINGS_DATA", "-m", US[0], *days)
    assert backfilled.returncode == 0, backfilled.stderr
    summary = json.loads(backfilled.stdout)
    assert (summary["total"], summary["stored"]) == (2, 2)
    assert "2/2 stored" in backfilled.stderr  # the progress lines

    refused = run("backfill", "--type", LISTINGS, "-m", US[0], "--from", "2026-02-01", "--to", "2026-01-01")
    assert refused.returncode == 2
    assert refused.stderr.strip() == "spreports: error: the backfill range is empty: its end must come after its start"
