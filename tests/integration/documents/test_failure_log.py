"""A document Amazon does not know is one clear line in the worker's log: permanent, no traceback, said once.

Amazon answers getReportDocument for an unknown id with 400 ``InvalidInput`` (the simulator's default),
or 404 ``NotFound`` (the models' answer, the simulator with ``unknown_ids_invalid`` off). Either is
permanent: no retry, no "attempt 1/5" warning, no Celery traceback, and the error's text once.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from spreports import enqueue_document
from spreports.errors import NotFound
from spreports.logs import ExpectedFailureFilter
from spreports.settings import Settings
from spreports.simulator import Simulator, SimulatorConfig, start_simulator
from spreports.simulator.config import generated_credentials
from tests.processes import product_env, spreports_process, wait_for

UNKNOWN = "amzn1.spdoc.1.4.na.UNKNOWN-DOCUMENT"


def _simulator(**config: Any) -> Iterator[Simulator]:
    client_id, client_secret = generated_credentials()
    simulator = start_simulator(
        SimulatorConfig(rate_limits=False, client_id=client_id, client_secret=client_secret, **config)
    )
    yield simulator
    simulator.stop()


@pytest.fixture
def sim_400() -> Iterator[Simulator]:
    """A simulator answering unknown ids as Amazon does: 400 ``InvalidInput``."""
    yield from _simulator()


@pytest.fixture
def sim_404() -> Iterator[Simulator]:
    """A simulator answering unknown ids with the models' 404 ``NotFound``."""
    yield from _simulator(unknown_ids_invalid=False)


@pytest.fixture
def sim(sim_404: Simulator) -> Simulator:
    """The documents conftest's ``settings`` (and so the in-process worker) use the 404 simulator here."""
    return sim_404


def test_an_unknown_document_is_one_error_line_from_a_real_worker(
    sim_400: Simulator, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # redis_client empties this pytest worker's database first: a message another test left in its queue
    # would be one more ERROR line from this worker.
    sim = sim_400
    env = {
        **sim.env(),
        "SPREPORTS_BROKER_URL": redis_url,
        "SPREPORTS_STORAGE__URL": str(tmp_path / "reports"),
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
    }
    log = tmp_path / "worker.log"
    node = f"failure-log-{uuid.uuid4().hex[:6]}@%h"
    worker = ("worker", "-Q", "documents", "-P", "threads", "-c", "1", "--without-mingle", "--without-gossip", "-n", node)  # fmt: skip
    with spreports_process(*worker, env=env, cwd=tmp_path, log=log):
        # The command waits for a worker: it is given one that is up (a loaded machine took over a minute to
        # start one and run the command, the command's 60 s ran out first); the timeouts are hang guards.
        wait_for(lambda: " ready." in log.read_text(errors="replace"), timeout=120)
        command = subprocess.run(
            [sys.executable, "-m", "spreports.workers.cli", "reports", "download", "--document", UNKNOWN],
            env=product_env(env), cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        wait_for(lambda: " ERROR " in log.read_text(errors="replace"), timeout=30)
    text = log.read_text(errors="replace")
    [error] = [line for line in text.splitlines() if " ERROR " in line]
    assert f"document {UNKNOWN} of seller {sim.seller_id} not stored (InvalidRequest, permanent" in error
    assert "HTTP 400 InvalidInput" in error and "request id" in error
    assert text.count("HTTP 400 InvalidInput") == 1, text  # said once: no retry warning, no Celery repeat
    assert "Traceback" not in text and "raised " not in text and "attempt 1" not in text, text
    # The command's own output: one error line after the queued line, exit status 2.
    assert command.returncode == 2
    [queued, said] = command.stderr.strip().splitlines()
    assert queued.startswith("queued task ")
    assert said.startswith("spreports: error: getReportDocument for seller") and "HTTP 400 InvalidInput" in said


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    loggers = [logging.getLogger(name) for name in ("spreports", "celery.app.trace")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_404_is_permanent_and_celery_logs_no_traceback_for_it(
    sim: Simulator, settings: Settings, celery_worker: Any, records: Records
) -> None:
    with pytest.raises(NotFound, match="HTTP 404 NotFound"):
        enqueue_document(UNKNOWN, settings=settings).get(timeout=30)
    ours = [r for r in records.records if r.name.startswith("spreports")]
    [error] = [r for r in ours if r.levelno >= logging.WARNING]  # no "attempt 1/5" warning before it
    assert "not stored (NotFound, permanent: retrying will not help)" in error.getMessage()
    assert "HTTP 404 NotFound" in error.getMessage() and error.exc_info is None
    # Celery's record of the failure carries no traceback and is dropped by every product handler.
    [celery] = wait_for(lambda: [r for r in records.records if r.name == "celery.app.trace"], timeout=10)
    assert celery.exc_info is None and celery.levelno == logging.INFO
    assert not ExpectedFailureFilter().filter(celery)
