"""A FATAL report's error document through a real worker: stored under _errors/, its reason in the result,
the manifest and the counter, and a cooldown started for its (seller, type)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import redis

from spreports import enqueue_document
from spreports.reports.cooldowns import cooldown_until
from spreports.reports.fatal_ledger import FatalLedger
from spreports.settings import Settings
from spreports.simulator import Simulator
from spreports.storage import open_storage

LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"


def test_the_fatal_reason_reaches_the_result_manifest_counter_and_cooldown(
    sim: Simulator, settings: Settings, celery_worker: Any, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="spreports.documents.retrieval")
    report = sim.world.create_report(sim.seller_id, LISTINGS, ("ATVPDKIKX0DER",))
    finished = sim.finish_report(report.report_id, "FATAL")
    document_id = finished["reportDocumentId"]
    reason = json.loads(b"".join(sim.document_content(document_id)))["errorDetails"]

    summary = enqueue_document(
        document_id, report_id=report.report_id, processing_status="FATAL", settings=settings
    ).get(timeout=120)

    assert summary["error_reason"] == reason and summary["processing_status"] == "FATAL"
    manifest = open_storage(settings).find(sim.seller_id, document_id)
    assert manifest is not None and manifest.error_reason == reason and "_errors" in manifest.location
    ledger = FatalLedger(redis_client)
    assert ledger.stats(LISTINGS).count == 1 and ledger.stats(LISTINGS).last_reason == reason
    assert ledger.reason_of(sim.seller_id, report.report_id) == reason
    assert cooldown_until(redis_client, sim.seller_id, LISTINGS, {"any": "options"}) is not None
    assert f"is FATAL: {reason}; requests of it wait until" in caplog.text

    # Again: already stored; the reason is still in the result, the counter is not counted twice.
    again = enqueue_document(document_id, report_id=report.report_id, processing_status="FATAL", settings=settings)
    assert again.get(timeout=120)["error_reason"] == reason
    assert ledger.stats(LISTINGS).count == 1
