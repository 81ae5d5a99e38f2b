"""A Redis restart during a quota-paced burst: every document is stored, none twice, none left to the hour.

A burst of one seller's documents beyond getReportDocument's bucket (the simulator enforces Amazon's usage
plan on a clock 20 times real time): the first are stored at once, the rest wait for their reserved turns,
their delayed messages held by a real ``spreports worker`` (kombu's Redis transport lists them as
unacknowledged). Redis (append-only file, fsync always) is then SIGKILLed and restarted on the same port.
The worker reconnects without the messages it held; the broker would hand them back only after its
visibility timeout, an hour later. The in-flight registry still lists each waiting document with the
moment its task was due back, and the requeue task (beat's, run here every second instead of every 15 s)
queues again the ones not seen a grace after that moment.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from benchmarks.lab import RedisProcess
from spreports import enqueue_document, names
from spreports.simulator import DocumentSpec, Simulator, SimulatorConfig, start_simulator
from spreports.simulator.config import generated_credentials
from spreports.storage import open_storage
from tests.e2e.test_chaos import load_runner
from tests.processes import product_env, wait_for
from tests.sim import simulator_settings

SPEED = 20.0  # getReportDocument: a burst of 15, then a token every 3 s of real time
DOCUMENTS = 27
CLAIM_TTL = 10  # the least allowed: the requeue's grace is the claim TTL plus a margin


@pytest.fixture
def sim() -> Iterator[Simulator]:
    client_id, client_secret = generated_credentials()
    simulator = start_simulator(SimulatorConfig(rate_limits=True, speed=SPEED, seed=19, client_id=client_id,
                                                client_secret=client_secret))  # fmt: skip
    yield simulator
    simulator.stop()


@pytest.mark.timeout(420)
def test_a_redis_restart_during_a_quota_paced_burst_stores_every_document_once(sim: Simulator, tmp_path: Path) -> None:
    chaos = load_runner()
    server = RedisProcess(tmp_path / "redis", persistent=True)
    server.start()
    settings = simulator_settings(sim, server.url, tmp_path, documents={"allowed_hosts": [sim.url],
                                                                        "claim_ttl_seconds": CLAIM_TTL})  # fmt: skip
    environment = product_env({
        **sim.env(),
        "SPREPORTS_LWA__CLIENT_ID": settings.lwa.client_id or "",
        "SPREPORTS_BROKER_URL": server.url,
        "SPREPORTS_STORAGE__URL": settings.storage.url,
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
        "SPREPORTS_DOCUMENTS__CLAIM_TTL_SECONDS": str(CLAIM_TTL),
    })  # fmt: skip
    from spreports.tasks.documents import requeue_orphaned_documents
    from spreports.workers.app import create_app

    app = create_app(settings)  # beat's requeue task runs here, on the restarted Redis
    client = redis.Redis.from_url(server.url, socket_timeout=5)
    storage = open_storage(settings)
    log_path = tmp_path / "worker.log"
    with contextlib.ExitStack() as stack:
        stack.callback(server.kill)
        stack.callback(app.close)
        log = stack.enter_context(log_path.open("wb"))
        worker = subprocess.Popen(
            [sys.executable, "-m", "spreports.workers.cli", "worker", "-Q", "documents", "--pool", "prefork", "-c", "2",
             "--without-gossip", "--without-mingle"],
            env=environment, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        stack.callback(_kill, worker)
        document_ids = [sim.add_document(DocumentSpec(size=4000, charset="UTF-8", seed=i), notify=False)
                        for i in range(DOCUMENTS)]  # fmt: skip
        for document_id in document_ids:
            enqueue_document(document_id, settings=settings)

        def stored() -> int:
            return sum(storage.find(sim.seller_id, d) is not None for d in document_ids)

        # Some stored, several away on their reserved turns, their delayed messages held by the worker.
        wait_for(lambda: stored() >= 3 and client.hlen("unacked") >= 5 and client.llen(names.DOCUMENTS_QUEUE) == 0,
                 timeout=120)  # fmt: skip
        held, before = client.hlen("unacked"), stored()
        server.kill()
        time.sleep(2.0)  # the outage: the time a supervisor takes to restart it
        server.start()

        requeued: list[int] = []

        def drained() -> bool:  # beat's requeue task, every second (beat: every 15 s)
            app.set_current()
            with contextlib.suppress(Exception):  # the worker may still be reconnecting
                requeued.append(requeue_orphaned_documents.apply().get())
            return stored() == DOCUMENTS

        wait_for(drained, timeout=240, interval=1.0)
        worker_log = log_path.read_text(errors="replace")
    print(f"\nRedis killed with {before} of {DOCUMENTS} stored and {held} delayed messages held; "
          f"{sum(requeued)} queued again by the requeue task")  # fmt: skip

    writes = chaos.written_per_document(worker_log)
    assert sorted(writes) == sorted(document_ids)  # every document written...
    assert set(writes.values()) == {1}  # ...once
    for document_id in document_ids:
        files = [p for p in Path(settings.storage.url).rglob(f"{document_id}.*") if "manifest" not in p.name]
        assert len(files) == 1, files


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
