"""Shared fixtures: real Redis, moto's SQS/S3 server, settings, the Celery app and a real worker.

The tiers are the folders: ``tests/unit`` (no socket, no process; see ``tests/unit/conftest.py``),
``tests/integration`` (real Redis, moto, the simulator, the product's processes) and ``tests/e2e`` (the
whole product as processes). Each test is marked ``unit``, ``integration`` or ``e2e`` from its folder
(``-m unit`` runs the quick tier), never by hand.

The suite runs in parallel (pytest-xdist, ``scripts/test`` passes ``-n``); what each worker owns:

- Redis: with ``REDIS_URL`` set, worker ``gwN`` uses database (db - N) mod 16 of that server, counting
  down from the URL's own database (CI's ``/15`` gives 15, 14, 13, ...: the workers stay clear of
  database 0, the one a developer's product uses by default); ``redis_client`` flushes only that
  database. Without ``REDIS_URL`` each worker starts a private redis-server of its own.
- moto: one server per worker on a free port; queues and buckets have random names anyway.
- ports (``free_port``), temporary directories (``tmp_path``) and the simulator (port 0) are per test.

``scripts/test`` hands out whole files (``--dist loadfile``): a module's or session's costly fixture (the
core install's venv) is built once per run, not once per worker that happens to get one of its tests.
"""

from __future__ import annotations

import gc
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from spreports.settings import Settings
from tests.servers import moto_server, redis_server, shared_redis_url

# The tests build their own settings; nothing from the developer's shell may leak into them.
for _name in list(os.environ):
    if _name.startswith("SPREPORTS_"):
        del os.environ[_name]
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
)


TIERS = ("unit", "integration", "e2e")
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with its tier, taken from its folder; a test outside the tier folders is an error."""
    for item in items:
        parts = Path(item.path).resolve().relative_to(TESTS).parts
        tier = parts[0] if len(parts) > 1 else None
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: every test lives in tests/unit, tests/integration or tests/e2e")
        item.add_marker(tier)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Before a unit test that follows another tier's test, collect that test's garbage.

    A finalizer may talk to a server (a Celery result unsubscribes from Redis in ``__del__``): run it now,
    not whenever the collector happens to run in the middle of the unit test, whose guard would refuse it.
    """
    result = yield
    if nextitem is not None and nextitem.get_closest_marker("unit") and not item.get_closest_marker("unit"):
        gc.collect()
    return result


#: How many databases a Redis server has (its default ``databases 16``).
REDIS_DATABASES = 16


def worker_redis_url(url: str, worker: str | None) -> str:
    """``url`` with the database of xdist worker ``worker`` (``gw0``, ``gw1``...; None: not under xdist).

    Worker N takes database (db - N) mod 16, counting down from the URL's own database.
    """
    if not worker or not worker.startswith("gw"):
        return url
    number = int(worker.removeprefix("gw"))
    if number >= REDIS_DATABASES:
        raise pytest.UsageError(f"at most {REDIS_DATABASES} xdist workers may share REDIS_URL (one database each)")
    parts = urlsplit(url)
    path = parts.path.strip("/")
    base = int(path) if path.isdigit() else 0
    return urlunsplit(parts._replace(path=f"/{(base - number) % REDIS_DATABASES}"))


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: this worker's database of ``REDIS_URL`` when set, else a private redis-server."""
    shared = shared_redis_url()
    if shared:
        yield worker_redis_url(shared, os.environ.get("PYTEST_XDIST_WORKER"))
        return
    with redis_server() as server:
        yield server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the session's Redis, emptied before each test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """moto's server for SQS and S3; clients reach it through AWS_ENDPOINT_URL_*."""
    with moto_server() as url:
        os.environ["AWS_ENDPOINT_URL_SQS"] = url
        os.environ["AWS_ENDPOINT_URL_S3"] = url
        yield url
        del os.environ["AWS_ENDPOINT_URL_SQS"]
        del os.environ["AWS_ENDPOINT_URL_S3"]


@pytest.fixture
def sqs_queue_url(aws_endpoint: str) -> str:
    """A fresh SQS queue on moto."""
    import boto3

    sqs = boto3.client("sqs", endpoint_url=aws_endpoint)
    return sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:12]}")["QueueUrl"]


@pytest.fixture
def settings(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Settings:
    """Settings for one test: the test Redis, storage and data under tmp_path."""
    return Settings(
        broker_url=redis_url,
        data_dir=tmp_path / "data",
        storage={"url": str(tmp_path / "reports")},
    )


@pytest.fixture
def celery_app(settings: Settings):  # type: ignore[no-untyped-def]
    """The product's Celery app, built from the test settings."""
    from spreports.workers.app import create_app

    app = create_app(settings)
    app.set_current()
    app.set_default()
    yield app
    app.close()


@pytest.fixture(autouse=True)
def no_embedded_redis_left() -> Iterator[None]:
    """An embedded Redis a test started in this process is released as the test ends.

    The process remembers the servers it started, and a one-shot command stops them as it ends: left
    registered, one test's server would be stopped (a socket opened) by a later test's command, a unit test's
    on the same pytest worker included.
    """
    yield
    embedded = sys.modules.get("spreports.workers.embedded_redis")
    if embedded is not None:
        embedded.release_started()


@pytest.fixture(scope="session", autouse=True)
def quick_worker_shutdown() -> Iterator[None]:
    """In-process Celery workers stop within 0.1 s instead of 1 s.

    A stopping worker first waits for its BRPOP on the queues to come back empty, which takes kombu's
    ``brpop_timeout`` (1 s); Redis takes fractional timeouts, so the tests' workers poll every 0.1 s.
    Only the consumers of this test process: the product's own processes keep kombu's default.
    """
    from kombu.transport import redis as kombu_redis

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kombu_redis.Transport, "brpop_timeout", 0.1)
        yield


@pytest.fixture
def celery_worker(celery_app):  # type: ignore[no-untyped-def]
    """A real worker consuming both queues of the test broker, in a thread."""
    from celery.contrib.testing.worker import start_worker

    from spreports import names

    celery_app.loader.import_default_modules()
    with start_worker(
        celery_app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        queues=[names.CONTROL_QUEUE, names.DOCUMENTS_QUEUE],
        shutdown_timeout=20.0,
    ) as worker:
        yield worker


@pytest.fixture
def simulator():  # type: ignore[no-untyped-def]
    """A running SP-API simulator: one seller, rate limits off, quick reports, on a free port."""
    from spreports.simulator import start_simulator
    from tests.sim import quick_config

    sim = start_simulator(quick_config())
    yield sim
    sim.stop()


@pytest.fixture
def sim(simulator):  # type: ignore[no-untyped-def]
    """The same simulator, under the name most tests give it."""
    return simulator
