"""A worker stopped (SIGTERM) mid-download hands its document back at once: stored elsewhere within a minute.

Celery's own SIGTERM waits for running tasks however long they take; a stalled download held a stopping
worker for its whole read timeout and retries (over a minute). ``spreports worker`` stops softly: running
tasks get a few seconds, then the pool process ends its download (partial file removed, claim released)
and the broker gets the message back for another worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from celery.contrib.testing.worker import start_worker

from spreports import enqueue_document
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator
from spreports.storage import open_storage
from tests.integration.documents.helpers import check_stored, downloads, expected_utf8
from tests.processes import product_env, wait_for
from tests.sim import Stall

SOFT_SHUTDOWN_SECONDS: float = Settings.model_fields["worker_soft_shutdown_seconds"].default  # as deployed


def test_a_stopped_worker_hands_its_download_back_and_another_stores_it_within_a_minute(
    sim: Simulator, settings: Settings, celery_app: Any, tmp_path: Path, redis_url: str, stall: Stall
) -> None:
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="Cp1252", size=4 * 2**20))
    stall.skip = 1  # getReportDocument answers; the download after it stalls (up to 120 s) until released
    sim.set_faults(slow_responses=2, slow_seconds=120.0)
    env = product_env({
        **sim.env(),
        "SPREPORTS_LWA__CLIENT_ID": settings.lwa.client_id or "",
        "SPREPORTS_BROKER_URL": redis_url,
        "SPREPORTS_STORAGE__URL": settings.storage.url,
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
        "SPREPORTS_WORKER_SOFT_SHUTDOWN_SECONDS": str(SOFT_SHUTDOWN_SECONDS),
    })  # fmt: skip
    env.pop("REMAP_SIGTERM", None)  # what `spreports worker` does on its own is under test
    storage = Path(settings.storage.url)
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "spreports.workers.cli", "worker", "-Q", "documents", "--pool", "prefork", "-c", "1",
             "--without-gossip", "--without-mingle"],
            env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            enqueue_document(document_id, settings=settings)
            wait_for(lambda: stall.stalling.is_set() and list(storage.rglob("*.part")), timeout=120)
            worker.send_signal(signal.SIGTERM)  # to the main process only, as `docker stop` sends it
            stopped = time.monotonic()
            worker.wait(timeout=SOFT_SHUTDOWN_SECONDS + 50)
            exited_in = time.monotonic() - stopped
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
    output = (tmp_path / "worker.log").read_text()
    assert exited_in < SOFT_SHUTDOWN_SECONDS + 10, f"the worker took {exited_in:.0f} s to stop:\n{output}"
    assert worker.returncode == 0, output
    assert "handed back for another worker" in output
    assert not list(storage.rglob("*.part")), "the abandoned download left its partial file"
    stall.release()

    # Another worker: the broker's message is back (no requeue task runs here), and no claim is in the way.
    with start_worker(celery_app, pool="threads", concurrency=1, perform_ping_check=False, queues=["documents"]):
        manifest = wait_for(lambda: open_storage(settings).find(sim.seller_id, document_id), timeout=60)
    back_in = time.monotonic() - stopped
    assert back_in < 60, f"stored {back_in:.0f} s after SIGTERM"
    print(f"stopped worker exited {exited_in:.1f} s after SIGTERM; document stored {back_in:.1f} s after it")
    check_stored(manifest, expected_utf8(sim, document_id, "Cp1252"))
    assert downloads(sim) == 2
