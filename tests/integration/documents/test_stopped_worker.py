"""A worker stopped (SIGTERM) mid-download hands its document back at once: stored elsewhere within a minute.

Celery's own SIGTERM waits for running tasks however long they take; a stalled download held a stopping
worker for its whole read timeout and retries (over a minute). ``spreports worker`` stops softly: running
tasks get a few seconds, then the pool process ends its download (partial file removed, claim released)
and the broker gets the message back for another worker.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from celery.contrib.testing.worker import start_worker

from spreports.settings import Settings, SpapiSettings
from spreports.simulator import Simulator
from spreports.storage import open_storage
from tests.integration.documents.helpers import check_stored, downloads, expected_utf8, worker_stalled_mid_download
from tests.processes import wait_for
from tests.sim import Stall

SOFT_SHUTDOWN_SECONDS: float = Settings.model_fields["worker_soft_shutdown_seconds"].default  # as deployed
READ_TIMEOUT_SECONDS: float = SpapiSettings.model_fields["read_timeout"].default  # a download without an answer


def test_a_stopped_worker_hands_its_download_back_and_another_stores_it_within_a_minute(
    sim: Simulator, settings: Settings, celery_app: Any, tmp_path: Path, redis_url: str, stall: Stall
) -> None:
    storage = Path(settings.storage.url)
    # REMAP_SIGTERM removed: what `spreports worker` does on its own is under test.
    with worker_stalled_mid_download(
        sim, settings, redis_url, tmp_path, stall,
        SPREPORTS_WORKER_SOFT_SHUTDOWN_SECONDS=str(SOFT_SHUTDOWN_SECONDS), REMAP_SIGTERM="",
    ) as (worker, document_id):  # fmt: skip
        worker.send_signal(signal.SIGTERM)  # to the main process only, as `docker stop` sends it
        stopped = time.monotonic()
        worker.wait(timeout=SOFT_SHUTDOWN_SECONDS + 50)
        exited_in = time.monotonic() - stopped
    output = (tmp_path / "worker.log").read_text()
    # Stalled, the download runs out the soft shutdown; then it is ended, not waited for: a worker that waited
    # would be held for the read timeout (60 s) and its retries. The upper bound is a hang guard below that.
    took = f"the worker took {exited_in:.0f} s to stop:\n{output}"
    assert SOFT_SHUTDOWN_SECONDS <= exited_in < READ_TIMEOUT_SECONDS, took
    assert worker.returncode == 0, output
    assert "handed back for another worker" in output
    assert not list(storage.rglob("*.part")), "the abandoned download left its partial file"
    stall.release()

    # Another worker: the broker's message is back (no requeue task runs here), and no claim is in the way.
    with start_worker(celery_app, pool="threads", concurrency=1, perform_ping_check=False, queues=["documents"]):
        manifest = wait_for(lambda: open_storage(settings).find(sim.seller_id, document_id), timeout=60)
    back_in = time.monotonic() - stopped  # reported; the wait's timeout above is the hang guard
    print(f"stopped worker exited {exited_in:.1f} s after SIGTERM; document stored {back_in:.1f} s after it")
    check_stored(manifest, expected_utf8(sim, document_id, "Cp1252"))
    assert downloads(sim) == 2
