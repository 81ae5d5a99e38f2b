"""No document is lost silently: what fails for good is in the failure ledger, and is re-driven from there."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from celery.app.task import Task
from kombu.exceptions import OperationalError

import spreports.tasks.retrying as retrying
from spreports import enqueue_document
from spreports.documents.claim import DocumentClaim
from spreports.errors import StorageUnavailable
from spreports.reports.failure_ledger import FailedDocument, FailureLedger
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator
from spreports.storage import LocalStorage, open_storage
from spreports.tasks.context import context
from spreports.tasks.sweep import sweep_finished_reports
from tests.processes import product_env, wait_for


class ReadOnlyDisk:
    """The storage's write seam, read-only until mended."""

    def __init__(self) -> None:
        self.read_only = True

    def write(self, fd: int, data: bytes) -> int:
        if self.read_only:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return os.write(fd, data)


@pytest.fixture
def disk(settings: Settings, celery_app: Any, monkeypatch: pytest.MonkeyPatch) -> ReadOnlyDisk:
    """A read-only disk under the worker, and a short budget: the outage outlasts the retries."""
    monkeypatch.setattr(retrying, "STORAGE_BACKOFF_BASE_SECONDS", 0.05)
    monkeypatch.setattr(retrying, "MAX_RETRIES", 1)
    broken = ReadOnlyDisk()
    context(celery_app).storage = LocalStorage(Path(settings.storage.url), write=broken.write)
    return broken


def fail_for_good(sim: Simulator, settings: Settings) -> str:
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="UTF-8"), notify=False)
    with pytest.raises(StorageUnavailable, match="read-only"):
        enqueue_document(document_id, settings=settings).get(timeout=60)
    return document_id


def cli(settings: Settings, *args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = product_env(
        {"SPREPORTS_BROKER_URL": str(settings.broker_url), "SPREPORTS_STORAGE__URL": settings.storage.url, **extra}
    )
    return subprocess.run(
        [sys.executable, "-m", "spreports.workers.cli", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_an_outage_longer_than_the_retries_is_recorded_then_redriven_by_the_sweep(
    sim: Simulator, settings: Settings, celery_app: Any, celery_worker: Any, redis_client: redis.Redis, disk: Any
) -> None:
    document_id = fail_for_good(sim, settings)
    [entry] = FailureLedger(redis_client).entries()
    assert (entry.request.seller_id, entry.request.report_document_id) == (sim.seller_id, document_id)
    assert entry.kind == "StorageUnavailable" and entry.may_pass and "read-only" in entry.reason

    disk.read_only = False
    assert sweep_finished_reports.apply().get() == {"failure-ledger": 1}
    wait_for(lambda: open_storage(settings).find(sim.seller_id, document_id), timeout=60)
    wait_for(lambda: FailureLedger(redis_client).count() == 0, timeout=30)


class Unpublishable:
    """A retry's signature the broker does not take (Celery then rejects the message: it is dropped)."""

    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}

    def apply_async(self, *args: Any, **kwargs: Any) -> None:
        raise OperationalError("Error 111 connecting to the broker. Connection refused.")


def recorded_without_a_broker_for_retries(
    document_id: str, settings: Settings, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> FailedDocument:
    """Enqueue the document with every retry refused by the broker; its failure ledger entry."""
    with monkeypatch.context() as patched:
        patched.setattr(Task, "signature_from_request", lambda self, *args, **kwargs: Unpublishable())
        enqueue_document(document_id, settings=settings)
        [entry] = wait_for(lambda: FailureLedger(redis_client).entries(), timeout=60)
    assert entry.request.report_document_id == document_id
    return entry


def test_a_retry_the_broker_cannot_take_is_recorded_as_may_pass_and_redriven(
    sim: Simulator,
    settings: Settings,
    celery_app: Any,
    celery_worker: Any,
    redis_client: redis.Redis,
    disk: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The storage fails (a passing condition) and the retry cannot be queued: not "permanent" in the ledger.
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="UTF-8"), notify=False)
    entry = recorded_without_a_broker_for_retries(document_id, settings, redis_client, monkeypatch)
    assert entry.kind == "StorageUnavailable" and entry.may_pass, entry

    disk.read_only = False
    assert sweep_finished_reports.apply().get() == {"failure-ledger": 1}
    wait_for(lambda: open_storage(settings).find(sim.seller_id, document_id), timeout=60)


def test_a_claim_wait_the_broker_cannot_take_is_recorded_as_may_pass(
    sim: Simulator,
    settings: Settings,
    celery_app: Any,
    celery_worker: Any,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another run holds the document's claim; this task's wait for it (a retry) cannot be queued.
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="UTF-8"), notify=False)
    assert DocumentClaim(redis_client, sim.seller_id, document_id, owner="another-run", ttl=60).acquire()
    entry = recorded_without_a_broker_for_retries(document_id, settings, redis_client, monkeypatch)
    assert entry.kind == "ServiceUnavailable" and entry.may_pass, entry
    assert "did not take this task's retry (OperationalError)" in entry.reason


def test_the_ledger_is_listed_counted_and_retried_from_the_command_line(
    sim: Simulator,
    settings: Settings,
    celery_worker: Any,
    redis_client: redis.Redis,
    disk: Any,
    tmp_path: Path,
    sqs_queue_url: str,
) -> None:
    document_id = fail_for_good(sim, settings)
    # check warns once every check passes: a complete deployment (LWA, a queue).
    deployment = {**sim.env(), "SPREPORTS_SQS__QUEUE_URL": sqs_queue_url}
    listed = cli(settings, "reports", "failed", cwd=tmp_path)
    assert listed.returncode == 0
    [line] = listed.stdout.strip().splitlines()
    assert f"\t{sim.seller_id}\t{document_id}\t" in line and "StorageUnavailable" in line
    assert (
        "1 document(s) failed for good: see `spreports reports failed`"
        in cli(settings, "check", cwd=tmp_path, **deployment).stderr
    )

    disk.read_only = False
    retried = cli(settings, "reports", "retry-failed", cwd=tmp_path)
    assert retried.stdout.strip() == "queued 1 document(s) of the failure ledger again"
    wait_for(lambda: FailureLedger(redis_client).count() == 0, timeout=60)
    assert open_storage(settings).find(sim.seller_id, document_id) is not None
    assert "failed for good" not in cli(settings, "check", cwd=tmp_path, **deployment).stderr
