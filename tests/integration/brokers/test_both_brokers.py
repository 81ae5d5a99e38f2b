"""The same end-to-end paths on both brokers: Redis, and RabbitMQ (quorum queues, publisher confirms).

Redis holds the product's state in both cases (a private server per broker); only the tasks travel
through the broker under test. Each test runs once per broker (the ``fleet`` fixture's parameter).
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import boto3
import pytest

from spreports import enqueue_document
from spreports.connection import connect
from spreports.documents.claim import DocumentClaim
from spreports.simulator import DocumentSpec
from spreports.workers.relay.process import run_relay
from tests.integration.brokers.conftest import Fleet, check_whole, downloads, stored
from tests.processes import wait_for

pytestmark = pytest.mark.timeout(240)


def test_a_worker_process_stores_an_enqueued_document(fleet: Fleet, worker: Path) -> None:
    document_id = fleet.sim.add_document(DocumentSpec(gzip=True, charset="UTF-8", size=200_000))
    summary = enqueue_document(document_id, settings=fleet.settings).get(timeout=60)
    manifest = stored(fleet, document_id)
    assert manifest is not None and summary["location"] == manifest.location
    check_whole(fleet, manifest, document_id)
    assert downloads(fleet, document_id) == 1


def test_relay_to_worker_stores_each_notified_document_once(fleet: Fleet, worker: Path, aws_endpoint: str) -> None:
    sqs = boto3.client("sqs", endpoint_url=aws_endpoint, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=f"brokers-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    fleet.sim.subscribe_queue(f"arn:aws:sqs:us-east-1:123456789012:{queue_url.rsplit('/', 1)[1]}")
    fleet.sim.set_faults(duplicate_notifications=2)  # two of them delivered twice
    document_ids = [fleet.sim.add_document(DocumentSpec(charset="UTF-8"), notify=True) for _ in range(4)]
    settings = fleet.settings.model_copy(
        update={"sqs": fleet.settings.sqs.model_copy(update={"queue_url": queue_url, "wait_time_seconds": 1})}
    )
    stop = threading.Event()
    relay = threading.Thread(target=run_relay, args=(settings, stop), daemon=True)
    relay.start()
    try:
        manifests = wait_for(lambda: all(stored(fleet, d) for d in document_ids) and document_ids, timeout=60)
    finally:
        stop.set()
        relay.join(timeout=30)
    for document_id in manifests:
        manifest = stored(fleet, document_id)
        assert manifest is not None
        check_whole(fleet, manifest, document_id)
        assert downloads(fleet, document_id) == 1  # the duplicates were absorbed, nothing fetched twice


def claim_waits(log: Path, document_id: str) -> int:
    """How many times the worker found the document claimed by another task and sent it back on a countdown."""
    pattern = f"document {document_id} of seller ".encode()
    return sum(pattern in line and b"being retrieved by another task" in line for line in log.read_bytes().splitlines())


def test_a_task_comes_back_from_every_countdown(fleet: Fleet, worker: Path) -> None:
    # A claim held elsewhere (as by another worker's download) sends the task back on a countdown of 5-7 s,
    # again and again while the claim is renewed. On RabbitMQ each countdown passes through the same delay
    # queues: a retry carrying the broker's dead-letter history (x-death) is held there as a cycle, for good.
    # Six waits (five countdowns through the same levels), then the claim goes and the sixth stores it.
    waiting = fleet.sim.add_document(DocumentSpec(charset="UTF-8"))
    redis = connect(str(fleet.settings.redis_url))
    claim = DocumentClaim(redis, fleet.sim.seller_id, waiting, owner="another-worker", ttl=3)
    assert claim.acquire()
    with claim.kept():
        first = enqueue_document(waiting, settings=fleet.settings)
        wait_for(lambda: claim_waits(worker, waiting) >= 1, timeout=30)
        # With one task at a time, a document queued during the wait is stored before the waiting one: the
        # waiting task is not held by the worker (RabbitMQ: it is in the broker's delayed-delivery queues).
        other = fleet.sim.add_document(DocumentSpec(charset="UTF-8"))
        enqueue_document(other, settings=fleet.settings).get(timeout=30)
        assert not first.ready()
        wait_for(lambda: claim_waits(worker, waiting) >= 6, timeout=150)
    first.get(timeout=60)
    assert stored(fleet, waiting) is not None and downloads(fleet, waiting) == 1
    assert claim_waits(worker, waiting) == 6
    assert b"Failed to setup delayed delivery" not in worker.read_bytes()
    assert b"Direct exchanges are not supported" not in worker.read_bytes()
