"""Every countdown comes back, on both brokers: one task sent back again and again through the same delay levels.

On RabbitMQ a countdown travels through Celery's delay queues by dead-lettering; a retry that carried the
broker's dead-letter history (``x-death``) through the same queue again was held there as a cycle, for good.
A file of its own: its waits run beside the other broker tests on another pytest worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from spreports import enqueue_document
from spreports.connection import connect
from spreports.documents.claim import DocumentClaim
from spreports.simulator import DocumentSpec
from tests.integration.brokers.conftest import Fleet, downloads, stored
from tests.processes import wait_for

pytestmark = pytest.mark.timeout(240)

#: Claim waits before the claim goes: each one a countdown that must come back. Every countdown (5 or 6 s)
#: passes the 4 s delay level, so the second wait is already the pass that cycled; the third is a spare.
WAITS = 3


def claim_waits(log: Path, document_id: str) -> int:
    """How many times the worker found the document claimed by another task and sent it back on a countdown."""
    pattern = f"document {document_id} of seller ".encode()
    return sum(pattern in line and b"being retrieved by another task" in line for line in log.read_bytes().splitlines())


def test_a_task_comes_back_from_every_countdown(fleet: Fleet, worker: Path) -> None:
    # A claim held elsewhere (as by another worker's download) sends the task back on a countdown of 5-7 s,
    # again and again while the claim is renewed. On RabbitMQ each countdown passes through the same delay
    # queues: a retry carrying the broker's dead-letter history (x-death) is held there as a cycle, for good.
    # Three waits, each a countdown through the same levels that must come back; then the claim goes.
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
        wait_for(lambda: claim_waits(worker, waiting) >= WAITS, timeout=150)
    first.get(timeout=60)
    assert stored(fleet, waiting) is not None and downloads(fleet, waiting) == 1
    assert claim_waits(worker, waiting) == WAITS
    assert b"Failed to setup delayed delivery" not in worker.read_bytes()
    assert b"Direct exchanges are not supported" not in worker.read_bytes()
