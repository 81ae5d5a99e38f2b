"""Fixtures of the relay's integration tests: moto SQS queues, a recording publisher, a relay factory."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
import redis

from spreports.task_arguments import DocumentRequest
from spreports.workers.relay.metrics import RelayCounters
from spreports.workers.relay.receiver import Relay, RelayOptions


@dataclass
class Recorder:
    """A publish callable that records requests, and can be told to fail like a broker that is down."""

    published: list[DocumentRequest] = field(default_factory=list)
    failing: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: DocumentRequest) -> None:
        if self.failing:
            raise ConnectionError("broker down")
        with self.lock:
            self.published.append(request)

    def ids(self) -> list[str]:
        with self.lock:
            return [r.notification_id for r in self.published]


@pytest.fixture
def sqs(aws_endpoint: str) -> Any:
    """A boto3 SQS client on moto."""
    return boto3.client("sqs", endpoint_url=aws_endpoint, region_name="us-east-1")


@pytest.fixture
def dlq_url(sqs: Any) -> str:
    """A fresh dead-letter queue."""
    url: str = sqs.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    return url


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


RelayFactory = Callable[..., Relay]


@pytest.fixture
def make_relay(sqs: Any, sqs_queue_url: str, redis_client: redis.Redis, recorder: Recorder) -> RelayFactory:
    """Build a Relay on the test queue and Redis; keyword arguments override its options."""

    def make(store: redis.Redis | None = None, publish: Any = None, sqs_client: Any = None, **overrides: Any) -> Relay:
        options = RelayOptions(
            **{"queue_url": sqs_queue_url, "wait_time_seconds": 1, "visibility_timeout": 4, **overrides}
        )
        return Relay(sqs_client or sqs, store or redis_client, publish or recorder, options, RelayCounters())

    return make


def send(sqs: Any, queue_url: str, bodies: list[str]) -> None:
    """Put bodies on a queue, ten per call."""
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        assert not response.get("Failed")


def queue_counts(sqs: Any, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def wait_until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll until ``condition()`` holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def running() -> Iterator[Callable[[Relay], threading.Event]]:
    """Start relays' run loops in threads; they are stopped (and joined) at the end of the test."""
    started: list[tuple[threading.Thread, threading.Event]] = []

    def start(relay: Relay) -> threading.Event:
        stop = threading.Event()
        thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
        thread.start()
        started.append((thread, stop))
        return stop

    yield start
    for _, stop in started:
        stop.set()
    for thread, _ in started:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a relay did not stop"
