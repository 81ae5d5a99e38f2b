"""The task's retry paths through a real thread worker: transient failures before the download,
claim waits on their own budget, duplicates sharing a task id."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

import spreports.tasks.documents as document_task
from spreports import enqueue_document, names
from spreports.documents.claim import CLAIM_PREFIX
from spreports.errors import ServiceUnavailable
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator
from spreports.storage import LocalStorage, Manifest, open_storage
from spreports.tasks.context import context
from spreports.tasks.retrying import MAX_RETRIES
from tests.integration.documents.helpers import TaskLog, check_stored, downloads, expected_utf8
from tests.processes import wait_for
from tests.sim import Stall


class FlakyFindStorage(LocalStorage):
    """Local storage whose first existence check fails like S3 answering 503."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.failures = 1

    def find(self, seller_id: str, report_document_id: str) -> Manifest | None:
        if self.failures:
            self.failures -= 1
            raise ServiceUnavailable("S3 failed on the manifest index (ServiceUnavailable); nothing was stored")
        return super().find(seller_id, report_document_id)


class BlippingRedis:
    """A Redis client whose first command fails as when Redis restarts; the later ones reach Redis."""

    def __init__(self, real: redis.Redis) -> None:
        self.real = real
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.real, name)
        if self.failures or not callable(attribute):
            return attribute

        def fail(*args: object, **kwargs: object) -> None:
            self.failures += 1
            raise redis.ConnectionError("Connection refused")

        return fail


def test_a_transient_storage_failure_while_checking_is_retried(
    sim: Simulator, settings: Settings, celery_app: Any, celery_worker: Any
) -> None:
    storage = FlakyFindStorage(Path(settings.storage.url))
    context(celery_app).storage = storage  # the worker's storage, as its context holds it
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="Cp1252"))
    summary = enqueue_document(document_id, settings=settings).get(timeout=180)
    assert storage.failures == 0 and not summary["already_stored"]
    check_stored(open_storage(settings).find(sim.seller_id, document_id), expected_utf8(sim, document_id, "Cp1252"))  # type: ignore[arg-type]


def test_a_redis_blip_while_taking_the_claim_is_retried(
    sim: Simulator, settings: Settings, celery_app: Any, celery_worker: Any
) -> None:
    ctx = context(celery_app)
    blipping = BlippingRedis(ctx.redis)
    ctx.redis = blipping  # type: ignore[assignment]
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="UTF-8"))
    summary = enqueue_document(document_id, settings=settings).get(timeout=180)
    assert blipping.failures == 1 and not summary["already_stored"] and downloads(sim) == 1


def test_claim_waits_do_not_use_up_the_transient_retry_budget(
    sim: Simulator,
    settings: Settings,
    celery_worker: Any,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    task_log: TaskLog,
) -> None:
    monkeypatch.setattr(document_task, "CLAIM_RETRY_SECONDS", 0.1)
    monkeypatch.setattr(document_task, "MIN_CLAIM_RETRY_SECONDS", 0.1)
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="Cp1252"))
    key = f"{CLAIM_PREFIX}:{sim.seller_id}:{document_id}"
    redis_client.set(key, "another-run", ex=600)  # held by a live run elsewhere
    sim.set_faults(expired_urls=3)  # then the first real run fails transiently (all in-process attempts)
    result = enqueue_document(document_id, settings=settings)
    waits = MAX_RETRIES + 3  # more waits than the whole transient budget
    wait_for(lambda: task_log.count("being retrieved by another task") >= waits, timeout=180)
    redis_client.delete(key)  # the other run is done (it stored nothing: this task must download)
    summary = result.get(timeout=180)
    assert downloads(sim) == 4 and summary["attempts"] == 1
    check_stored(open_storage(settings).find(sim.seller_id, document_id), expected_utf8(sim, document_id, "Cp1252"))  # type: ignore[arg-type]


def test_duplicates_sharing_a_task_id_download_once(
    sim: Simulator,
    settings: Settings,
    celery_app: Any,
    celery_worker: Any,
    task_log: TaskLog,
    stall: Stall,
    quick_claim_waits: None,
) -> None:
    # The relay names tasks after the notification, so a redelivered notification repeats the task id.
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="UTF-8", size=2 * 2**20))
    # The first run's retrieval is held up (its getReportDocument stalls, with the claim taken) until
    # the duplicate has found the claim taken: then it goes on.
    sim.set_faults(slow_responses=1, slow_seconds=60.0)
    kwargs = {"seller_id": sim.seller_id, "report_document_id": document_id}
    send: Callable[[], Any] = lambda: celery_app.send_task(  # noqa: E731
        names.RETRIEVE_REPORT_DOCUMENT, kwargs=kwargs, task_id=f"notification-{document_id}"
    )
    send()
    send()
    wait_for(lambda: stall.stalling.is_set() and task_log.count("being retrieved by another task") >= 1, timeout=180)
    stall.release()
    wait_for(lambda: task_log.count("stored document") >= 2, timeout=180)  # both runs finished
    assert downloads(sim) == 1
    manifest = open_storage(settings).find(sim.seller_id, document_id)
    assert manifest is not None
    check_stored(manifest, expected_utf8(sim, document_id, "UTF-8"))
    assert not list(Path(settings.storage.url).rglob("*.part"))
