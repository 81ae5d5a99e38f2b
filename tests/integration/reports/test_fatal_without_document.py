"""A FATAL report without an error document (the common case) starts its cooldown: the next identical
request waits, with no SP-API call. A real worker, the simulator, no relay."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from spreports import request_report
from spreports.errors import ReportFatal
from spreports.reports.cooldowns import cooldown_until
from spreports.settings import Settings
from spreports.simulator import Outcomes, Simulator, start_simulator
from tests.processes import wait_for
from tests.sim import quick_config, simulator_settings

LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
US = ["ATVPDKIKX0DER"]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    fatal = Outcomes(done=0, fatal=1, queue_seconds=0.05, processing_seconds=0.1)
    simulator = start_simulator(quick_config(outcomes=fatal, fatal_error_documents=False))
    yield simulator
    simulator.stop()


@pytest.fixture
def settings(sim: Simulator, redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Settings:
    quick_follow = {"follow_first_seconds": 0.2, "follow_max_seconds": 1.0}
    return simulator_settings(sim, redis_url, tmp_path, requests=quick_follow)  # type: ignore[no-any-return]


def test_a_fatal_without_a_document_defers_the_next_identical_request(
    celery_worker: Any, settings: Settings, sim: Simulator
) -> None:
    first = request_report(LISTINGS, marketplace_ids=US, settings=settings)
    with pytest.raises(ReportFatal, match="ended FATAL"):
        first.get(timeout=60)
    assert [r.status for r in sim.requests("createReport")] == [202]
    fatal = sim.report(first.parent.get(timeout=5)["report_id"])
    assert fatal["processingStatus"] == "FATAL" and "reportDocumentId" not in fatal  # no error document at all
    until = cooldown_until(redis.Redis.from_url(str(settings.broker_url)), sim.seller_id, LISTINGS)
    assert until is not None and until > datetime.now(UTC)
    calls_before = len(sim.requests())
    again = request_report(LISTINGS, marketplace_ids=US, settings=settings)
    wait_for(lambda: again.parent.state == "RETRY", timeout=30)
    assert [r.operation for r in sim.requests()[calls_before:]] == []  # not one SP-API call
    again.parent.revoke()
