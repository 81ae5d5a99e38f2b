"""Checks shared by the document integration tests."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.lab import CODECS as CODECS
from benchmarks.lab import expected_utf8 as expected_utf8
from spreports import enqueue_document
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator
from spreports.storage import Manifest
from tests.processes import product_env, wait_for
from tests.sim import Stall


def check_stored(manifest: Manifest, expected: bytes) -> None:
    """The stored file is exactly ``expected`` and the manifest's size and sha256 say so."""
    data = Path(manifest.location).read_bytes()
    assert data == expected
    assert manifest.bytes_out == len(data)
    assert manifest.sha256 == hashlib.sha256(data).hexdigest()


def downloads(sim: Simulator) -> int:
    """How many times the simulator was asked for a document body."""
    return len(sim.requests("downloadDocument"))


class TaskLog(logging.Handler):
    """Counts the task module's log lines containing a phrase (the worker runs in threads here)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []
        self.guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self.guard:
            self.messages.append(record.getMessage())

    def count(self, phrase: str) -> int:
        with self.guard:
            return sum(phrase in message for message in self.messages)


@contextmanager
def worker_stalled_mid_download(
    sim: Simulator, settings: Settings, redis_url: str, tmp_path: Path, stall: Stall, **env: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A ``spreports worker`` (prefork, one process) holding a 4 MiB document's download mid-body.

    Yields the worker (its own process group) and the document id once the download has stalled with
    its partial file on disk; ``env`` adds to the worker's environment (a key set to "" is removed). The
    worker's output is ``tmp_path / "worker.log"``; a worker still running at the end is killed.
    """
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="Cp1252", size=4 * 2**20))
    stall.skip = 1  # getReportDocument answers; the download after it stalls (up to 120 s) until released
    sim.set_faults(slow_responses=2, slow_seconds=120.0)
    environment = product_env({
        **sim.env(),
        "SPREPORTS_LWA__CLIENT_ID": settings.lwa.client_id or "",
        "SPREPORTS_BROKER_URL": redis_url,
        "SPREPORTS_STORAGE__URL": settings.storage.url,
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
        **env,
    })  # fmt: skip
    environment = {key: value for key, value in environment.items() if value != ""}
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "spreports.workers.cli", "worker", "-Q", "documents", "--pool", "prefork", "-c", "1",
             "--without-gossip", "--without-mingle"],
            env=environment, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            enqueue_document(document_id, settings=settings)
            wait_for(lambda: stall.stalling.is_set() and list(Path(settings.storage.url).rglob("*.part")), timeout=120)
            yield worker, document_id
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
