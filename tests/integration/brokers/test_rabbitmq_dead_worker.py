"""RabbitMQ hands a dead worker's task back as soon as its connection drops.

With Redis the message would come back only after the visibility timeout (hours); the product requeues
the document from its in-flight list instead (``tests/integration/documents/test_dead_worker.py``).
With RabbitMQ the unacknowledged delivery of a SIGKILLed worker is ready again at once; the next worker
then waits only for the dead run's claim to lapse (10 s here, the least allowed).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection

import spreports.tasks.documents as document_task
from spreports import enqueue_document, names
from spreports.simulator import DocumentSpec
from spreports.workers.app import create_app
from spreports.workers.brokers import amqp_queue_depths
from tests.integration.brokers.conftest import WORKER_ARGS, Fleet, check_whole, downloads, stored
from tests.processes import product_env, wait_for
from tests.sim import Stall

REDELIVERY_BOUND_SECONDS = 30.0
STORED_BOUND_SECONDS = 90.0

pytestmark = [pytest.mark.timeout(180), pytest.mark.parametrize("fleet", ["rabbitmq"], indirect=True)]


@pytest.fixture
def quick_claim_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The survivor (a thread worker of this process) looks at the claim again within 0.2 s, not 5 to 15 s."""
    monkeypatch.setattr(document_task, "CLAIM_RETRY_SECONDS", 0.2)
    monkeypatch.setattr(document_task, "MIN_CLAIM_RETRY_SECONDS", 0.2)


@pytest.fixture
def victim(fleet: Fleet) -> Iterator[subprocess.Popen[bytes]]:
    """A worker process, alone on the broker (so the task goes to it), ready to be killed."""
    log = fleet.workdir / "victim.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "spreports.workers.cli", "worker", *WORKER_ARGS, "-n", "victim@%h"],
            env=product_env(fleet.env), cwd=fleet.workdir, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(lambda: b" ready." in log.read_bytes(), timeout=60)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def ready_messages(fleet: Fleet) -> int:
    with Connection(fleet.settings.broker_url) as connection:
        return amqp_queue_depths(connection, [names.DOCUMENTS_QUEUE]).get(names.DOCUMENTS_QUEUE, 0)


def test_a_sigkilled_workers_task_is_redelivered_at_once_and_stored_once(
    fleet: Fleet, victim: subprocess.Popen[bytes], quick_claim_waits: None
) -> None:
    stall = Stall(fleet.sim, skip=1)  # getReportDocument answers; the download after it stalls
    fleet.sim.set_faults(slow_responses=2, slow_seconds=60.0)
    document_id = fleet.sim.add_document(DocumentSpec(gzip=True, charset="UTF-8", size=2 * 2**20))
    try:
        result = enqueue_document(document_id, settings=fleet.settings)
        wait_for(lambda: stall.stalling.is_set() and list(fleet.root.rglob("*.part")), timeout=60)
        assert ready_messages(fleet) == 0  # delivered, unacknowledged, in the victim's hands
        os.killpg(victim.pid, signal.SIGKILL)  # parent and pool at once: its connection drops with it
        killed = time.monotonic()
        victim.wait()
        wait_for(lambda: ready_messages(fleet) == 1, timeout=REDELIVERY_BOUND_SECONDS, interval=0.05)
        redelivered = time.monotonic() - killed
    finally:
        stall.release()
    summary = _survivor_runs(fleet, result)
    back_in = time.monotonic() - killed
    print(f"rabbitmq: the task ready again {redelivered:.2f} s after the kill; stored {back_in:.1f} s after it")
    # Not a timeout: the broker saw the connection drop. A silent peer would be noticed only by its missed
    # heartbeats (Celery's 120 s, twice); the bound is a hang guard far below that, not a speed claim.
    assert redelivered < REDELIVERY_BOUND_SECONDS
    manifest = stored(fleet, document_id)
    assert manifest is not None and summary["location"] == manifest.location
    check_whole(fleet, manifest, document_id)
    assert downloads(fleet, document_id) == 2  # the dead run's and the survivor's, one stored file
    # The claim's 10 s, then one look; the bound is a hang guard for a busy machine, not a speed claim.
    assert back_in < STORED_BOUND_SECONDS


def _survivor_runs(fleet: Fleet, result: Any) -> dict[str, Any]:
    """Run a thread worker on the broker until the task's result is in; return it."""
    from celery.contrib.testing.worker import start_worker

    app = create_app(fleet.settings)
    app.set_current()
    app.loader.import_default_modules()
    try:
        with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False, queues=[names.DOCUMENTS_QUEUE]):
            summary: dict[str, Any] = result.get(timeout=60)
    finally:
        app.close()
    return summary
