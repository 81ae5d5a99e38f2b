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
