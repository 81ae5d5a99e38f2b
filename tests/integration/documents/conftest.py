"""Fixtures: the simulator (with its slow faults held by the test), settings pointing the product (library,
workers) at it, and the task module's log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import spreports.tasks.documents as document_task
from spreports.documents import retrieval
from spreports.settings import Settings
from spreports.simulator import Simulator, SimulatorConfig, start_simulator
from spreports.simulator.config import generated_credentials
from tests.integration.documents.helpers import TaskLog
from tests.sim import Stall


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A simulator without rate limits (these tests are about documents, not quotas).

    Fresh LWA credentials per simulator: the SP-API client caches access tokens per process, keyed by
    the credentials, so a token minted by an earlier simulator must not be offered to this one.
    """
    client_id, client_secret = generated_credentials()
    config = SimulatorConfig(rate_limits=False, seed=7, client_id=client_id, client_secret=client_secret)
    simulator = start_simulator(config)
    yield simulator
    simulator.stop()


def simulator_settings(sim: Simulator, redis_url: str, tmp_path: Path, storage_url: str) -> Settings:
    """Settings for the product against ``sim``."""
    return Settings(
        broker_url=redis_url,
        data_dir=tmp_path / "data",
        seller_id=sim.seller_id,
        lwa={"client_id": sim.client_id, "client_secret": sim.client_secret,
             "refresh_token": sim.refresh_tokens[sim.seller_id], "token_url": sim.token_url},
        spapi={"endpoint": sim.url, "read_timeout": 20},
        storage={"url": storage_url},
        documents={"allowed_hosts": [sim.url], "claim_ttl_seconds": 600},
    )  # fmt: skip


@pytest.fixture
def settings(sim: Simulator, redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Settings:
    """Overrides the shared ``settings``: the simulator, the test Redis, local storage in tmp_path."""
    return simulator_settings(sim, redis_url, tmp_path, str(tmp_path / "reports"))


@pytest.fixture
def stall(sim: Simulator) -> Iterator[Stall]:
    """The simulator's slow responses wait for ``stall.release()`` (see :class:`tests.sim.Stall`)."""
    held = Stall(sim)
    yield held
    held.release()  # nothing stays stalled after the test


@pytest.fixture
def task_log() -> Iterator[TaskLog]:
    handler = TaskLog()
    # The task tells its waits, the retrieval service what it stored.
    loggers = [logging.getLogger(document_task.__name__), logging.getLogger(retrieval.__name__)]
    old_levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    yield handler
    for logger, old_level in zip(loggers, old_levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@pytest.fixture
def quick_claim_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A task that finds the document claimed looks again within 0.2 s instead of 5 to 15 s (thread workers only)."""
    monkeypatch.setattr(document_task, "CLAIM_RETRY_SECONDS", 0.2)
    monkeypatch.setattr(document_task, "MIN_CLAIM_RETRY_SECONDS", 0.2)
