"""Fixtures of the tests run on both brokers: Redis, and RabbitMQ (``RABBITMQ_URL``, default the machine's).

Each pytest worker's RabbitMQ runs get a vhost of their own (``rabbitmqctl add_vhost``, removed at the
end), so parallel and repeated runs never share a queue. Without ``rabbitmqctl`` the URL's own vhost is
used as it is. In CI (``CI=true``) a RabbitMQ that does not answer fails the run; elsewhere its tests skip.

The module's worker process, simulator and Redis are shared by its tests, one set per broker: a
process start is the slow part, and each test works on documents of its own.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from spreports.settings import Settings
from spreports.simulator import Simulator, start_simulator
from spreports.storage import Manifest, open_storage
from tests.processes import spreports_process, wait_for
from tests.rabbitmq import private_vhost, rabbitmq_base_url, rabbitmq_problem
from tests.servers import RedisServer, unavailable
from tests.sim import quick_config

BROKERS = ("redis", "rabbitmq")


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """An AMQP URL on a vhost of this test session's own (when ``rabbitmqctl`` can create one)."""
    base = rabbitmq_base_url()
    problem = rabbitmq_problem(base)
    if problem is not None:
        unavailable(problem)
    with private_vhost(base) as url:
        yield url


@dataclass
class Fleet:
    """One broker's set-up: the settings the test process uses, the workers' environment, the simulator."""

    broker: str
    settings: Settings
    env: dict[str, str]
    sim: Simulator
    root: Path
    workdir: Path


def fleet_env(sim: Simulator, broker_url: str, redis_url: str, root: Path, workdir: Path) -> dict[str, str]:
    """The environment of the product's processes for this broker and state Redis."""
    return {
        **sim.env(),
        "SPREPORTS_BROKER_URL": broker_url,
        "SPREPORTS_REDIS_URL": redis_url,
        "SPREPORTS_STORAGE__URL": str(root),
        "SPREPORTS_DATA_DIR": str(workdir / "data"),
        "SPREPORTS_DOCUMENTS__CLAIM_TTL_SECONDS": "10",  # the least allowed: a dead run's claim lapses soon
    }


@pytest.fixture(scope="module", params=BROKERS)
def fleet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """A simulator, a private Redis (the state) and the broker under test; no worker yet."""
    broker: str = request.param
    amqp_url = request.getfixturevalue("rabbitmq_url") if broker == "rabbitmq" else None
    redis = RedisServer()
    redis.start()
    sim = start_simulator(quick_config())
    workdir = tmp_path_factory.mktemp(f"fleet-{broker}")
    root = workdir / "reports"
    env = fleet_env(sim, amqp_url or redis.url, redis.url, root, workdir)
    settings = Settings(_env_file=None, **_settings_values(env))
    try:
        yield Fleet(broker, settings, env, sim, root, workdir)
    finally:
        sim.stop()
        redis.stop()
        shutil.rmtree(redis.dir, ignore_errors=True)


def _settings_values(env: dict[str, str]) -> dict[str, object]:
    """The same settings, built in this process from the processes' environment."""
    import json

    return {
        "broker_url": env["SPREPORTS_BROKER_URL"],
        "redis_url": env["SPREPORTS_REDIS_URL"],
        "data_dir": Path(env["SPREPORTS_DATA_DIR"]),
        "seller_id": env["SPREPORTS_SELLER_ID"],
        "lwa": {"client_id": env["SPREPORTS_LWA__CLIENT_ID"], "client_secret": env["SPREPORTS_LWA__CLIENT_SECRET"],
                "refresh_token": env["SPREPORTS_LWA__REFRESH_TOKEN"], "token_url": env["SPREPORTS_LWA__TOKEN_URL"]},
        "spapi": {"endpoint": env["SPREPORTS_SPAPI__ENDPOINT"], "read_timeout": 20},
        "storage": {"url": env["SPREPORTS_STORAGE__URL"]},
        "documents": {"allowed_hosts": json.loads(env["SPREPORTS_DOCUMENTS__ALLOWED_HOSTS"]),
                      "claim_ttl_seconds": int(env["SPREPORTS_DOCUMENTS__CLAIM_TTL_SECONDS"])},
    }  # fmt: skip


WORKER_ARGS = ("-Q", "documents,control", "--pool", "threads", "-c", "1", "--without-gossip", "--without-mingle")


@pytest.fixture(scope="module")
def worker(fleet: Fleet) -> Iterator[Path]:
    """A real worker process (``spreports worker``, one task at a time) on the fleet's broker; its log."""
    log = fleet.workdir / "worker.log"
    with spreports_process("worker", *WORKER_ARGS, "-n", f"shared-{fleet.broker}@%h", env=fleet.env,
                           cwd=fleet.workdir, log=log):  # fmt: skip
        wait_for(lambda: b" ready." in log.read_bytes(), timeout=60)
        yield log


def stored(fleet: Fleet, document_id: str) -> Manifest | None:
    """The manifest of a stored document, or None."""
    return open_storage(fleet.settings).find(fleet.sim.seller_id, document_id)


def check_whole(fleet: Fleet, manifest: Manifest, document_id: str) -> None:
    """The stored file is the simulator's document, byte for byte (a UTF-8 source, BOM dropped)."""
    data = Path(manifest.location).read_bytes()
    expected = b"".join(fleet.sim.document_content(document_id)).removeprefix(b"\xef\xbb\xbf")
    assert data == expected
    assert manifest.sha256 == hashlib.sha256(data).hexdigest()


def downloads(fleet: Fleet, document_id: str) -> int:
    """How many times the simulator served this document's body."""
    return sum(document_id in record.path for record in fleet.sim.requests("downloadDocument"))
