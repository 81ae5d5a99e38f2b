"""The sweep's stuck pass through the tasks: it never skips the seller's sweep, and its re-request is a
regular request whose report a caller waiting on the stuck one is handed.

The simulator's clock starts three hours back, so the reports it makes are stuck by the workers' clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from spreports import names, request_report
from spreports.reports.obtain import ReportSpec, RequestRegistry, obtain_report
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Faults, Simulator, start_simulator
from spreports.spapi import SpapiClient
from spreports.spapi import operations as ops
from spreports.spapi.ratelimit import RateLimiter
from spreports.storage import open_storage
from tests.sim import quick_config, simulator_settings

LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
US = ["ATVPDKIKX0DER"]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    # The first report made stays IN_QUEUE; made three hours ago by the workers' clock, it is stuck.
    start = datetime.now(UTC) - timedelta(hours=3)
    simulator = start_simulator(quick_config(start=start, faults=Faults(queued_reports=1)))
    yield simulator
    simulator.stop()


@pytest.fixture
def settings(sim: Simulator, redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Settings:
    return simulator_settings(  # type: ignore[no-any-return]
        sim, redis_url, tmp_path, sqs={"report_types": [LISTINGS]},
        requests={"follow_first_seconds": 0.2, "follow_max_seconds": 1.0},
    )  # fmt: skip


def test_a_busy_create_report_quota_never_skips_the_sellers_sweep(
    celery_app: Any, settings: Settings, sim: Simulator, redis_client: redis.Redis
) -> None:
    from spreports.tasks.sweep import sweep_finished_reports

    client = SpapiClient.for_seller(settings, sim.seller_id, redis=redis_client)
    stuck = obtain_report(ReportSpec.of(sim.seller_id, LISTINGS, US), client, RequestRegistry(redis_client),
                          owner="test", reuse_done=timedelta(0), check_amazon=False, now=sim.clock.now())  # fmt: skip
    sim.add_document(DocumentSpec(report_type=LISTINGS, size=1000), notify=False)  # its notification was lost
    # The seller's createReport bucket is busy (a backfill, say): the next token is a minute away.
    limiter = RateLimiter(redis_client)
    limiter.drain(limiter.key(settings.region_of(sim.seller_id), sim.seller_id, ops.CREATE_REPORT), ops.CREATE_REPORT)

    # No worker here: what the sweep queues stays in the queues.
    assert sweep_finished_reports.apply().get() == {sim.seller_id: 1, "recovered": 1}
    assert redis_client.llen(names.DOCUMENTS_QUEUE) == 1
    assert redis_client.llen(names.CONTROL_QUEUE) == 1  # the stuck report's request, waiting for its turn
    assert sim.report(stuck.report_id)["processingStatus"] == "IN_QUEUE"  # cancelled once its replacement exists
    assert len(sim.requests("createReport")) == 1


def test_a_caller_waiting_on_a_stuck_report_is_handed_its_replacements_document(
    celery_app: Any, celery_worker: Any, settings: Settings, sim: Simulator
) -> None:
    from spreports.tasks.sweep import sweep_finished_reports

    options = {"custom": "true"}
    end = sim.clock.now() - timedelta(days=1)
    result = request_report(LISTINGS, marketplace_ids=US, report_options=options,
                            data_start_time=end - timedelta(days=1), data_end_time=end, settings=settings)  # fmt: skip
    stuck = result.parent.get(timeout=60)["report_id"]
    assert sim.report(stuck)["processingStatus"] == "IN_QUEUE"

    sweep_finished_reports.apply().get()
    summary = result.get(timeout=120)

    replacement = sim.report_of_document(summary["report_document_id"])
    assert replacement["reportId"] != stuck and replacement["processingStatus"] == "DONE"
    assert sim.report(stuck)["processingStatus"] == "CANCELLED"
    # The same request again: options (which Amazon never shows again), marketplaces and data window.
    assert sim.world.reports[(sim.seller_id, replacement["reportId"])].options == options
    before = sim.report(stuck)
    assert (replacement["marketplaceIds"], replacement["dataStartTime"], replacement["dataEndTime"]) == (
        before["marketplaceIds"], before["dataStartTime"], before["dataEndTime"],
    )  # fmt: skip
    assert Path(summary["location"]).is_file()
    assert open_storage(settings).find(sim.seller_id, summary["report_document_id"]) is not None
    assert len(sim.requests("createReport")) == 2


def test_a_replacement_that_fails_for_good_lets_the_stuck_reports_followers_go(
    celery_app: Any, settings: Settings, sim: Simulator, redis_client: redis.Redis
) -> None:
    from spreports.errors import InvalidRequest
    from spreports.reports.stuck import PENDING, Replacements
    from spreports.tasks.reports import request_report as request_task

    replacements = Replacements(redis_client)
    replacements.start(sim.seller_id, "1234")
    assert replacements.of(sim.seller_id, "1234") == PENDING
    # Amazon refuses every request of a settlement report: the replacement's request fails for good.
    kwargs = {"report_type": "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE", "seller_id": sim.seller_id,
              "marketplace_ids": US, "replaces": "1234"}  # fmt: skip
    with pytest.raises(InvalidRequest, match="cannot be requested"):
        request_task.apply(kwargs=kwargs).get()
    assert replacements.of(sim.seller_id, "1234") is None


def test_a_failing_stuck_pass_is_reported_and_the_sweep_still_runs(
    celery_app: Any, settings: Settings, sim: Simulator, redis_client: redis.Redis
) -> None:
    from spreports.tasks.sweep import sweep_finished_reports

    client = SpapiClient.for_seller(settings, sim.seller_id, redis=redis_client)
    stuck = obtain_report(ReportSpec.of(sim.seller_id, LISTINGS, US), client, RequestRegistry(redis_client),
                          owner="test", reuse_done=timedelta(0), check_amazon=False, now=sim.clock.now())  # fmt: skip
    redis_client.set(f"spreports:report-made:{sim.seller_id}:{stuck.report_id}", "{not json")  # a damaged record
    sim.add_document(DocumentSpec(report_type=LISTINGS, size=1000), notify=False)

    result = sweep_finished_reports.apply().get()
    assert result[sim.seller_id] == 1 and result["recovered"] == 1
    assert str(result[f"{sim.seller_id}:stuck"]).startswith("failed: JSONDecodeError")
    assert redis_client.llen(names.DOCUMENTS_QUEUE) == 1
