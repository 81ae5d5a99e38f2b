"""A task away on a countdown whose message the broker loses: its document is stored once, by the requeue task.

The task finds the document claimed by another run and goes away on a countdown; a worker holds the
delayed message (kombu's Redis transport lists it as unacknowledged until it is due). The worker is then
SIGKILLed and the broker's record of the message deleted, as a Redis restart or a purge would: no queue,
no unacknowledged entry, no visibility timeout brings it back. The in-flight registry still lists the
document with the moment its task was due back, and the requeue task (beat's, called here as beat would)
queues it again a grace after that moment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from spreports import enqueue_document, names
from spreports.documents.claim import CLAIM_PREFIX
from spreports.documents.inflight import DUE_MARGIN_SECONDS, INFLIGHT_KEY
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator
from spreports.storage import open_storage
from spreports.tasks.context import attach
from spreports.tasks.documents import requeue_orphaned_documents
from tests.integration.documents.helpers import check_stored, downloads, expected_utf8
from tests.processes import product_env, wait_for

CLAIM_TTL = 10  # the least allowed
HELD_CLAIM_SECONDS = 30  # the other run's claim
UNACKED = ("unacked", "unacked_index")  # kombu's Redis transport: delivered, not yet acknowledged


def test_a_waiting_document_whose_message_the_broker_loses_is_stored_once_by_the_requeue(
    sim: Simulator, settings: Settings, celery_app: Any, tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    settings = settings.model_copy(
        update={"documents": settings.documents.model_copy(update={"claim_ttl_seconds": CLAIM_TTL})}
    )
    attach(celery_app, settings)  # the requeue task's grace follows the claim TTL
    document_id = sim.add_document(DocumentSpec(size=64 * 1024, gzip=True, charset="UTF-8"), notify=False)
    field = f"{sim.seller_id}:{document_id}"

    environment = product_env({
        **sim.env(),
        "SPREPORTS_LWA__CLIENT_ID": settings.lwa.client_id or "",
        "SPREPORTS_BROKER_URL": redis_url,
        "SPREPORTS_STORAGE__URL": settings.storage.url,
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
        "SPREPORTS_DOCUMENTS__CLAIM_TTL_SECONDS": str(CLAIM_TTL),
    })  # fmt: skip
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "spreports.workers.cli", "worker", "-Q", "documents", "--pool", "prefork", "-c", "1",
             "--without-gossip", "--without-mingle"],
            env=environment, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            # Another run holds the claim and dies without storing: its claim lapses by itself. Taken once the
            # worker is ready, and long enough that a busy machine's task finds it held.
            wait_for(lambda: " ready." in (tmp_path / "worker.log").read_text(), timeout=90)
            redis_client.set(f"{CLAIM_PREFIX}:{field}", "another-run", ex=HELD_CLAIM_SECONDS)
            enqueue_document(document_id, settings=settings)

            def waiting() -> bool:  # away on a countdown, its delayed message held by the worker
                return redis_client.hlen(UNACKED[0]) == 1 and redis_client.llen(names.DOCUMENTS_QUEUE) == 0

            wait_for(waiting, timeout=60)
            wait_for(lambda: "is being retrieved by another task" in (tmp_path / "worker.log").read_text(), timeout=30)
            # Listed as away (with its due moment) once the retry is sent: on a busy machine a moment later.
            wait_for(lambda: json.loads(redis_client.hget(INFLIGHT_KEY, field) or b"{}").get("due"), timeout=30)
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
    # The broker loses the message: nothing would ever deliver it again.
    redis_client.delete(*UNACKED)
    lost_at = sim.clock.seconds()
    listed = redis_client.hget(INFLIGHT_KEY, field)
    assert downloads(sim) == 0

    from celery.contrib.testing.worker import start_worker

    requeued: list[tuple[float, int]] = []  # (time, documents queued again) of each pass

    def requeue_pass() -> int:  # beat's requeue task, every second instead of every 15 s
        requeued.append((time.time(), requeue_orphaned_documents.apply().get()))
        return requeued[-1][1]

    storage = open_storage(settings)
    with start_worker(celery_app, pool="threads", concurrency=2, perform_ping_check=False, queues=["documents"]):
        wait_for(requeue_pass, timeout=90, interval=1.0)
        manifest = wait_for(lambda: storage.find(sim.seller_id, document_id), timeout=60)
        for _ in range(3):  # later passes find it stored: not queued again
            requeue_pass()
    stored_after = sim.clock.seconds() - lost_at

    assert sum(count for _, count in requeued) == 1
    # Listed while away, with the moment it was due back; not queued again before that moment plus the grace
    # (the claim TTL and a margin): until then its task might still come back.
    assert listed is not None
    due = json.loads(listed)["due"]
    first = next(at for at, count in requeued if count)
    assert first > due + CLAIM_TTL + DUE_MARGIN_SECONDS
    assert stored_after < 120, f"stored {stored_after:.0f} simulated s after the message was lost"
    check_stored(manifest, expected_utf8(sim, document_id, "UTF-8"))
    assert downloads(sim) == 1
    assert len([p for p in Path(settings.storage.url).rglob(f"{document_id}.*") if "manifest" not in p.name]) == 1
    assert redis_client.hlen(INFLIGHT_KEY) == 0  # stored: off the list
