"""A storage outage that passes (read-only, full) loses nothing: the documents are stored once it has passed."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import Any

import pytest

import spreports.tasks.retrying as retrying
from spreports import enqueue_document
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator
from spreports.storage import LocalStorage, open_storage
from spreports.tasks.context import context
from tests.integration.documents.helpers import check_stored, expected_utf8
from tests.processes import wait_for


class Disk:
    """The storage's write seam: read-only (EROFS) or full (ENOSPC) until mended."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.broken = threading.Event()
        self.broken.set()
        self.refused = 0
        self._lock = threading.Lock()

    def write(self, fd: int, data: bytes) -> int:
        if self.broken.is_set():
            with self._lock:
                self.refused += 1
            raise OSError(self.code, os.strerror(self.code))
        return os.write(fd, data)


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC])
def test_documents_written_during_an_outage_are_stored_once_it_passes(
    sim: Simulator,
    settings: Settings,
    celery_app: Any,
    celery_worker: Any,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
) -> None:
    monkeypatch.setattr(retrying, "STORAGE_BACKOFF_BASE_SECONDS", 0.2)  # minutes in production, not in a test
    disk = Disk(code)
    context(celery_app).storage = LocalStorage(Path(settings.storage.url), write=disk.write)
    # Each attempt asks getReportDocument for a fresh URL: few documents, so that the product's own
    # limiter (Amazon's burst of 15, then one a minute) does not make the test wait.
    document_ids = [sim.add_document(DocumentSpec(gzip=True, charset="Cp1252"), notify=False) for _ in range(3)]
    results = [enqueue_document(document_id, settings=settings) for document_id in document_ids]
    # Every document met the outage, and some more than once, before it passes.
    wait_for(lambda: disk.refused > len(document_ids), timeout=60)
    disk.broken.clear()
    summaries = [result.get(timeout=120) for result in results]
    assert all(not summary["already_stored"] for summary in summaries)
    storage = open_storage(settings)
    for document_id in document_ids:
        check_stored(storage.find(sim.seller_id, document_id), expected_utf8(sim, document_id, "Cp1252"))  # type: ignore[arg-type]
    assert not list(Path(settings.storage.url).rglob("*.part"))
