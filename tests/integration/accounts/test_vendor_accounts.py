"""A vendor group's notification, relayed and retrieved by the real relay and a real worker, with the
only credentials configured (named otherwise than the account)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from spreports.settings import Settings
from spreports.simulator import DocumentSpec, SellerAccount, Simulator, start_simulator
from spreports.storage import open_storage
from spreports.workers.relay.process import run_relay
from tests.processes import wait_for
from tests.sim import quick_config, simulator_settings

VENDOR = "amzn1.vg.6213651"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = start_simulator(quick_config(sellers=(SellerAccount(VENDOR, "Atzr|vendor-refresh-token"),)))
    yield simulator
    simulator.stop()


@pytest.fixture
def settings(sim: Simulator, redis_url: str, redis_client: redis.Redis, tmp_path: Path, sqs_queue_url: str) -> Settings:
    """One set of credentials, configured under a name of the user's choosing (not the account id)."""
    base = simulator_settings(sim, redis_url, tmp_path, seller_id="MYVENDOR")
    sqs = {"queue_url": sqs_queue_url, "wait_time_seconds": 1, "application_id": sim.application_id}
    return base.model_copy(update={"sqs": base.sqs.model_copy(update=sqs)})


def test_a_vendor_notification_is_stored_with_the_single_credentials(
    sim: Simulator, settings: Settings, sqs_queue_url: str, celery_worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="spreports.accounts")
    assert list(settings.sellers()) == ["MYVENDOR"]
    sim.subscribe_queue(sqs_queue_url, seller_id=VENDOR)
    stop, ready = threading.Event(), threading.Event()
    relay = threading.Thread(target=run_relay, args=(settings, stop), kwargs={"ready": ready}, daemon=True)
    relay.start()
    try:
        assert ready.wait(60), "the relay did not start"
        document_id = sim.add_document(DocumentSpec(size=20_000), seller_id=VENDOR, notify=True)
        storage = open_storage(settings)
        manifest = wait_for(lambda: storage.find(VENDOR, document_id), timeout=120)
    finally:
        stop.set()
        relay.join(timeout=60)
    assert manifest.seller_id == VENDOR  # stored under the account, served with MYVENDOR's credentials
    assert b"".join(sim.document_content(document_id))  # the simulator served the vendor's document
    assert [r.seller_id for r in sim.requests("getReportDocument")] == [VENDOR]
    assert "is served with the only configured credentials (seller MYVENDOR)" in caplog.text
