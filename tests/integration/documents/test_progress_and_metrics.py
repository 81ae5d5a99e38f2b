"""Seeing the work: a running download's progress as its task's state and events; the fleet's metrics.

A real prefork worker (``spreports worker``) retrieves from the simulator. While a large document
downloads, ``AsyncResult.state`` / ``.info`` say ``PROGRESS`` with growing bytes and the task events
(what Flower shows) carry the same; afterwards ``spreports metrics`` serves the counts of what the
worker did and the depth of each queue, read from Redis.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families

from spreports import enqueue_document, names
from spreports.errors import InvalidRequest
from spreports.settings import Settings
from spreports.simulator import DocumentSpec, Simulator
from spreports.storage import open_storage
from spreports.tasks.progress import PROGRESS_EVENT, PROGRESS_STATE
from tests.processes import product_env, spreports_process, wait_for
from tests.servers import free_port


def worker_env(sim: Simulator, settings: Settings, redis_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a worker pointed at ``sim``, the test Redis and the test storage."""
    return {
        **sim.env(),
        "SPREPORTS_BROKER_URL": redis_url,
        "SPREPORTS_STORAGE__URL": settings.storage.url,
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
        **extra,
    }


@contextmanager
def documents_worker(env: dict[str, str], tmp_path: Path, celery_app: Celery) -> Iterator[Path]:
    """A prefork worker on the documents queue, ready (it answered a ping); yields its log file."""
    log = tmp_path / "worker.log"
    args = ("worker", "-Q", "documents", "--pool", "prefork", "-c", "1", "--without-gossip", "--without-mingle")
    with spreports_process(*args, env=env, cwd=tmp_path, log=log):
        ping = celery_app.send_task(names.PING, kwargs={"value": "up"}, queue=names.DOCUMENTS_QUEUE)
        assert ping.get(timeout=120) == "up", log.read_text()
        yield log


class ProgressEvents:
    """The ``task-progress`` events of the broker, captured on a thread as Flower receives them."""

    def __init__(self, app: Celery) -> None:
        self.events: list[dict[str, Any]] = []
        self._app = app
        self._ready = threading.Event()
        self._receiver: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self._app.connection_for_read() as connection:
            receiver = self._app.events.Receiver(connection, handlers={PROGRESS_EVENT: self.events.append})
            iterations = [0]

            def on_iteration() -> None:
                # Before each wait for events: the second one comes after the first wait subscribed.
                iterations[0] += 1
                if iterations[0] >= 2:
                    self._ready.set()

            receiver.on_iteration = on_iteration
            self._receiver = receiver
            for _ in receiver.itercapture(limit=None, timeout=None, wakeup=False):
                pass

    def __enter__(self) -> ProgressEvents:
        self._thread.start()
        assert self._ready.wait(30), "the event receiver did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._receiver.should_stop = True
        self._thread.join(timeout=10)


def test_a_large_download_shows_progress_as_its_state_and_events_until_stored(
    sim: Simulator, settings: Settings, celery_app: Celery, redis_url: str, tmp_path: Path
) -> None:
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="Cp1252", size=128 * 2**20))
    env = worker_env(sim, settings, redis_url, tmp_path,
                     SPREPORTS_DOCUMENTS__PROGRESS_SECONDS="60", SPREPORTS_DOCUMENTS__PROGRESS_BYTES=str(2**20))  # fmt: skip
    seen: list[dict[str, Any]] = []
    with documents_worker(env, tmp_path, celery_app) as log, ProgressEvents(celery_app) as events:
        result = enqueue_document(document_id, settings=settings)
        while not result.ready():
            # One read of the backend: state and info of the same update (two reads could pair a
            # PROGRESS state with the final summary, which has bytes_in too).
            meta = result.backend.get_task_meta(result.id, cache=False)
            state, info = meta["status"], meta["result"]
            fresh = isinstance(info, dict) and (not seen or seen[-1]["bytes_in"] != info.get("bytes_in"))
            if state == PROGRESS_STATE and fresh:
                seen.append(info)
            time.sleep(0.01)
        summary = result.get(timeout=10)
        wait_for(lambda: events.events and events.events[-1]["bytes_in"] >= summary["bytes_in"] - 2**20, timeout=10)
    assert result.state == "SUCCESS"
    manifest = open_storage(settings).find(sim.seller_id, document_id)
    assert manifest is not None

    # AsyncResult: PROGRESS with bytes growing towards the whole, ids and sizes, never a URL.
    assert len(seen) >= 2, f"PROGRESS seen {len(seen)} time(s)"
    received = [info["bytes_in"] for info in seen]
    assert received == sorted(received) and received[0] < received[-1] <= manifest.bytes_in
    latest = seen[-1]
    assert latest["seller_id"] == sim.seller_id and latest["report_document_id"] == document_id
    assert latest["expected_bytes_in"] == manifest.bytes_in  # the Content-Length of the gzip body
    assert 0 < latest["percent"] <= 100 and latest["rate"] > 0 and latest["bytes_out"] > 0
    assert latest["attempt"] == 1
    assert not any("http" in str(value) for value in latest.values())

    # Task events (what Flower shows): one per MiB received, for this task, with the same fields.
    ours = [event for event in events.events if event["uuid"] == result.id]
    assert len(ours) >= manifest.bytes_in // 2**20 // 2
    assert [e["bytes_in"] for e in ours] == sorted(e["bytes_in"] for e in ours)
    assert ours[-1]["report_document_id"] == document_id and ours[-1]["expected_bytes_in"] == manifest.bytes_in

    # Start and end lines with the ids and the task id.
    output = log.read_text()
    assert f"retrieving document {document_id} of seller {sim.seller_id}" in output
    ended = [line for line in output.splitlines() if f"stored document {document_id}" in line]
    assert ended and result.id in ended[0], output[-3000:]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the endpoint, keyed by (name, sorted labels)."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_metrics_endpoint_counts_what_the_workers_did_and_what_waits(
    sim: Simulator, settings: Settings, celery_app: Celery, redis_url: str, tmp_path: Path
) -> None:
    stored_id = sim.add_document(DocumentSpec(gzip=True, charset="Cp1252", size=2 * 2**20))
    env = worker_env(sim, settings, redis_url, tmp_path)
    port = free_port()
    with documents_worker(env, tmp_path, celery_app):
        # The next getReport answers 429; the transport tries again (a 429 on getReportDocument would
        # empty its one-a-minute bucket, and the task would wait a minute for its turn).
        sim.set_faults(throttle=1, fault_operations=["getReport"])
        report_id = sim.report_of_document(stored_id)["reportId"]
        summary = enqueue_document(stored_id, report_id=report_id, settings=settings).get(timeout=120)
        sim.set_faults(fault_operations=[])
        with pytest.raises(InvalidRequest):  # Amazon knows no such document: it fails for good
            enqueue_document("amzn1.spdoc.1.4.na.unknown", settings=settings).get(timeout=120)
        for value in ("a", "b", "c"):  # nobody consumes the control queue here
            celery_app.send_task(names.PING, kwargs={"value": value}, queue=names.CONTROL_QUEUE)
        with spreports_process("metrics", "--port", str(port), "--host", "127.0.0.1", env=env, cwd=tmp_path):
            samples = wait_for(lambda: _try_scrape(port), timeout=60)

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("spreports_documents_total", outcome="stored") == 1
    assert value("spreports_documents_total", outcome="failed") == 1
    assert value("spreports_documents_total", outcome="already_stored") == 0
    assert value("spreports_document_failures_total", kind="InvalidRequest") == 1
    assert value("spreports_document_retries_total") == 0
    assert value("spreports_document_bytes_in_total") == summary["bytes_in"]
    assert value("spreports_document_bytes_out_total") == summary["bytes_out"]
    assert value("spreports_document_seconds_count") == 1
    assert value("spreports_spapi_throttled_total") == 1
    assert value("spreports_failed_documents") == 1
    assert value("spreports_queue_depth", queue="control") == 3
    assert value("spreports_queue_depth", queue="documents") == 0
    assert value("spreports_documents_in_flight") == 0
    assert value("spreports_redis_up") == 1


def _try_scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    try:
        return scrape(port)
    except requests.ConnectionError:
        return None


def test_the_download_command_draws_a_workers_progress_as_a_bar_on_a_terminal(
    sim: Simulator, settings: Settings, celery_app: Celery, redis_url: str, tmp_path: Path
) -> None:
    document_id = sim.add_document(DocumentSpec(gzip=True, charset="UTF-8", size=32 * 2**20))
    env = worker_env(sim, settings, redis_url, tmp_path, SPREPORTS_DOCUMENTS__PROGRESS_BYTES=str(2**20))
    with documents_worker(env, tmp_path, celery_app):
        command = [sys.executable, "-m", "spreports.workers.cli", "reports", "download", "--document", document_id]
        terminal, stderr = pty.openpty()  # stderr is a terminal: the bar is drawn there
        process = subprocess.Popen(
            command, env=product_env({**env, "TERM": "xterm", "COLUMNS": "160"}), cwd=tmp_path,
            stdout=subprocess.PIPE, stderr=stderr,
        )  # fmt: skip
        os.close(stderr)
        drawn = bytearray()
        reader = threading.Thread(target=_drain, args=(terminal, drawn), daemon=True)
        reader.start()
        stdout, _ = process.communicate(timeout=120)
        reader.join(timeout=10)
        os.close(terminal)
    screen = drawn.decode(errors="replace")
    assert process.returncode == 0, screen
    manifest = open_storage(settings).find(sim.seller_id, document_id)
    assert manifest is not None and stdout.decode().startswith(f"stored at {manifest.location}")
    assert "downloading" in screen and "100%" in screen, screen[-2000:]
    whole = f"{manifest.bytes_in / 1e6:.1f}/{manifest.bytes_in / 1e6:.1f} MB"  # rich's DownloadColumn
    assert whole in screen, screen[-2000:]


def _drain(fd: int, into: bytearray) -> None:
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the other end is closed
            return
        if not data:
            return
        into.extend(data)
