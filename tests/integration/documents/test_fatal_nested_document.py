"""A FATAL report whose error document is deeply nested JSON, through a real worker process: the document is
stored under _errors/ with its manifest, and the reason, the counter and the cooldown are all written."""

from __future__ import annotations

import uuid
from pathlib import Path

import redis

from spreports import enqueue_document
from spreports.reports.cooldowns import cooldown_until
from spreports.reports.fatal_ledger import UNREADABLE, FatalLedger
from spreports.settings import Settings
from spreports.simulator import Simulator
from spreports.simulator.content import DocumentSpec
from spreports.storage import open_storage
from tests.processes import spreports_process

LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
# 10 KB of brackets: enough to exhaust Python's JSON parser, which recurses once per level.
NESTED = '{"errorDetails": ' + "[" * 5_000 + "]" * 5_000 + "}"


def test_a_nested_error_document_is_stored_with_its_reason_counter_and_cooldown(
    sim: Simulator, settings: Settings, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    report = sim.world.create_report(sim.seller_id, LISTINGS, ("ATVPDKIKX0DER",))
    error_document = DocumentSpec(report_type="ERROR_DOCUMENT", text=NESTED, restricted=False)
    document_id = sim.finish_report(report.report_id, "FATAL", spec=error_document)["reportDocumentId"]
    assert b"".join(sim.document_content(document_id)).decode() == NESTED  # what Amazon sends, as it sends it
    env = {
        **sim.env(),
        "SPREPORTS_BROKER_URL": redis_url,
        "SPREPORTS_STORAGE__URL": settings.storage.url,
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
    }
    node = f"fatal-nested-{uuid.uuid4().hex[:6]}@%h"
    worker = ("worker", "-Q", "documents", "-P", "threads", "-c", "1", "--without-mingle", "--without-gossip", "-n", node)  # fmt: skip
    with spreports_process(*worker, env=env, cwd=tmp_path, log=tmp_path / "worker.log"):
        summary = enqueue_document(
            document_id, report_id=report.report_id, processing_status="FATAL", settings=settings
        ).get(timeout=120)

    reason = f"{UNREADABLE} (JSON nested too deeply)"
    assert summary["error_reason"] == reason and summary["processing_status"] == "FATAL"
    manifest = open_storage(settings).find(sim.seller_id, document_id)
    assert manifest is not None and manifest.error_reason == reason and "_errors" in manifest.location
    assert Path(manifest.location).read_text() == NESTED  # kept whole for a person to read
    ledger = FatalLedger(redis_client)
    stats = ledger.stats(LISTINGS)
    assert (stats.count, stats.last_reason, stats.last_report) == (1, reason, report.report_id)
    assert ledger.reason_of(sim.seller_id, report.report_id) == reason
    assert cooldown_until(redis_client, sim.seller_id, LISTINGS) is not None
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "RecursionError" not in log and "Traceback" not in log, log
