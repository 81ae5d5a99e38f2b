"""Shared fixtures: real Redis, moto's SQS/S3 server, settings, the Celery app and a real worker."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: ``REDIS_URL`` when set, else a private redis-server for this session."""
    shared = shared_redis_url()
    if shared:
        yield shared
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
