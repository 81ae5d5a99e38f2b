"""Waiting for the fleet's quota is not failing: a burst of one seller's documents beyond getReportDocument's
bucket is stored whole, without a single 429 from Amazon, and the waiting tasks come back one by one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import spreports.tasks.retrying as retrying
from spreports import enqueue_document
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator, SimulatorConfig, start_simulator
from spreports.simulator.config import generated_credentials
from spreports.storage import open_storage

# getReportDocument: 0.0167/s with a burst of 15 (Amazon's usage plan). At 20x a token comes every 3 s,
# longer than a task sleeps in its slot for one (IN_SLOT_WAIT_SECONDS, 1 s), as at Amazon's real pace: the
# tasks beyond the burst must go away and come back, without spending their one allowed failure.
SPEED = 20.0
BURST = 15
DOCUMENTS = BURST + 4


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """The simulator enforcing Amazon's usage plans on its accelerated clock."""
    client_id, client_secret = generated_credentials()
    config = SimulatorConfig(rate_limits=True, speed=SPEED, seed=11, client_id=client_id, client_secret=client_secret)
    simulator = start_simulator(config)
    yield simulator
    simulator.stop()


def test_a_burst_beyond_the_quota_is_stored_without_a_failure_or_a_429(
    sim: Simulator, settings: Settings, celery_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One transient failure allowed: every wait beyond the bucket must therefore not count as one.
    monkeypatch.setattr(retrying, "MAX_RETRIES", 1)
    document_ids = [sim.add_document(DocumentSpec(size=2000), notify=False) for _ in range(DOCUMENTS)]
    # The bucket learns Amazon's real rate from x-amzn-RateLimit-Limit on the first answers.
    results = [enqueue_document(document_id, settings=settings) for document_id in document_ids]
    summaries = [result.get(timeout=180) for result in results]

    storage = open_storage(settings)
    assert all(storage.find(sim.seller_id, document_id) is not None for document_id in document_ids)
    assert sorted(s["report_document_id"] for s in summaries) == sorted(document_ids)
    calls = sim.requests("getReportDocument", sim.seller_id)
    assert [c.status for c in calls if c.status != 200] == []  # not one 429
    assert len(calls) == DOCUMENTS  # each reserved turn was used once, none wasted
