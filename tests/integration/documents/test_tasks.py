"""The task through real workers: a thread worker for most, a prefork subprocess killed mid-download."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spreports import enqueue_document, names
from spreports.errors import DocumentRejected, InvalidRequest
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator
from spreports.storage import open_storage
from tests.integration.documents.helpers import TaskLog, check_stored, downloads, expected_utf8
from tests.processes import product_env, wait_for
from tests.sim import Stall

ROOT = Path(__file__).resolve().parents[3]


def stored_files(settings: Settings) -> list[Path]:
    root = Path(settings.storage.url)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_enqueued_document_is_stored_and_summarised(
    sim: Simulator, settings: Settings, celery_worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="Cp1252", size=500_000))
    report = sim.report_of_document(document_id)
    with caplog.at_level(logging.DEBUG):
        summary = enqueue_document(document_id, report_id=report["reportId"], settings=settings).get(timeout=120)
    manifest = open_storage(settings).find(sim.seller_id, document_id)
    assert manifest is not None and summary["location"] == manifest.location
    check_stored(manifest, expected_utf8(sim, document_id, "Cp1252"))
    assert manifest.report_type == report["reportType"]  # learnt from getReport
    assert (summary["sha256"], summary["bytes_out"]) == (manifest.sha256, manifest.bytes_out)
    assert "X-Amz-Signature" not in json.dumps(summary) and "X-Amz-Signature" not in caplog.text
    again = enqueue_document(document_id, settings=settings).get(timeout=120)
    assert again["already_stored"] and again["sha256"] == summary["sha256"]
    assert downloads(sim) == 1


def test_duplicate_tasks_download_once(
    sim: Simulator, settings: Settings, celery_worker: Any, task_log: TaskLog, stall: Stall, quick_claim_waits: None
) -> None:
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="UTF-8", size=2 * 2**20))
    # The first run's retrieval is held up (with the claim taken) until the other has found the claim taken.
    sim.set_faults(slow_responses=1, slow_seconds=60.0)
    results = [enqueue_document(document_id, settings=settings) for _ in range(2)]
    wait_for(lambda: stall.stalling.is_set() and task_log.count("being retrieved by another task") >= 1, timeout=180)
    stall.release()
    summaries = [r.get(timeout=180) for r in results]
    assert downloads(sim) == 1
    assert sorted(s["already_stored"] for s in summaries) == [False, True]
    assert summaries[0]["sha256"] == summaries[1]["sha256"]
    check_stored(open_storage(settings).find(sim.seller_id, document_id), expected_utf8(sim, document_id, "UTF-8"))  # type: ignore[arg-type]


def test_transient_failures_beyond_the_in_process_attempts_become_a_celery_retry(
    sim: Simulator, settings: Settings, celery_worker: Any
) -> None:
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="Cp1252"))
    sim.set_faults(expired_urls=3)  # all three attempts of the first run
    summary = enqueue_document(document_id, settings=settings).get(timeout=180)
    assert summary["attempts"] == 1 and downloads(sim) == 4
    check_stored(open_storage(settings).find(sim.seller_id, document_id), expected_utf8(sim, document_id, "Cp1252"))  # type: ignore[arg-type]


def test_permanent_errors_fail_the_task_clearly_and_store_nothing(sim: Simulator, settings: Settings) -> None:
    from celery.contrib.testing.worker import start_worker

    from spreports.workers.app import create_app

    document_id = sim.add_document(DocumentSpec())
    documents = settings.documents.model_copy(update={"allowed_hosts": ["*.amazonaws.com"]})
    strict = settings.model_copy(update={"documents": documents})
    app = create_app(strict)  # a worker that refuses the simulator's host
    app.loader.import_default_modules()
    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False, queues=["documents"],
                      shutdown_timeout=60):  # fmt: skip
        result = enqueue_document(document_id, settings=strict)
        with pytest.raises(DocumentRejected, match="not on SPREPORTS_DOCUMENTS__ALLOWED_HOSTS"):
            result.get(timeout=120)
        assert "X-Amz" not in (result.traceback or "")
        with pytest.raises(InvalidRequest, match="report_document_id"):  # the producer refuses it at once
            enqueue_document("../../../etc/passwd", settings=strict)
        # Sent by name, past the producer: the task refuses it, as it refuses the colliding "S:X" seller.
        for seller, document in ((sim.seller_id, "../../../etc/passwd"), ("S:X", "missing1")):
            bad = app.send_task(names.RETRIEVE_REPORT_DOCUMENT, queue=names.DOCUMENTS_QUEUE, ignore_result=False,
                                kwargs={"seller_id": seller, "report_document_id": document})  # fmt: skip
            with pytest.raises(InvalidRequest, match="bad task arguments"):
                bad.get(timeout=120)
    app.close()
    assert stored_files(strict) == []


def _worker_children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_a_worker_killed_mid_download_is_redelivered_and_the_document_stored_once_whole(
    sim: Simulator, settings: Settings, tmp_path: Path, redis_url: str, stall: Stall
) -> None:
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="Cp1252", size=8 * 2**20))
    # The download stalls after its first piece until the test is over (or 120 s); the getReportDocument
    # call before it, which the fault would slow too, is not held up.
    stall.skip = 1
    sim.set_faults(slow_responses=2, slow_seconds=120.0)
    env = product_env({
        **sim.env(),
        "SPREPORTS_LWA__CLIENT_ID": settings.lwa.client_id or "",
        "SPREPORTS_BROKER_URL": redis_url,
        "SPREPORTS_STORAGE__URL": settings.storage.url,
        # The killed run's claim is no longer renewed: it lapses within this (the least allowed), then the
        # redelivered task takes it.
        "SPREPORTS_DOCUMENTS__CLAIM_TTL_SECONDS": "10",
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
    })  # fmt: skip
    log = (tmp_path / "worker.log").open("wb")  # closed in the finally below
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "spreports.workers.app", "worker", "-Q", "documents", "--pool", "prefork",
         "-c", "1", "--without-gossip", "--without-mingle", "-l", "INFO"],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        result = enqueue_document(document_id, settings=settings)
        # The temporary file exists once the download's headers arrived; the body is then stalled.
        wait_for(lambda: downloads(sim) == 1 and list(Path(settings.storage.url).rglob("*.part")), timeout=120)
        children = wait_for(lambda: _worker_children(worker.pid), timeout=30)
        os.kill(children[0], signal.SIGKILL)  # the pool process running the task dies mid-download
        summary = result.get(timeout=240)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        log.close()
    manifest = open_storage(settings).find(sim.seller_id, document_id)
    assert manifest is not None and summary["location"] == manifest.location
    check_stored(manifest, expected_utf8(sim, document_id, "Cp1252"))
    assert downloads(sim) == 2
    documents = [p for p in stored_files(settings) if not p.name.endswith((".json", ".part"))]
    assert documents == [Path(manifest.location)]  # once, whole: no second copy
    # Only the killed run's temporary file may remain (removed once older than STALE_PART_SECONDS);
    # the redelivered run's own was renamed into place.
    assert len([p for p in stored_files(settings) if p.name.endswith(".part")]) <= 1
