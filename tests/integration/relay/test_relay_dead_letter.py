"""Dead-lettering large invalid messages on moto's SQS: batches split by size, nothing wedges or loops."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

import spreports.workers.relay.dead_letter as dead_letter
from tests.integration.relay.conftest import RelayFactory, queue_counts, send, wait_until
from tests.integration.relay.test_relay_batches import receive_all

# Ten of these make a 1.2 MB batch: over moto's (and today's AWS) 1 MiB batch limit, and over the old 256 KiB.
BIG = 120 * 1024


def big_bodies(count: int, size: int = BIG) -> list[str]:
    """Distinct invalid (non-JSON) bodies of ``size`` bytes."""
    return [f"junk-{i}-".ljust(size, "x") for i in range(count)]


def drain(sqs: Any, queue_url: str, expected: int) -> list[Any]:
    """Receive (and delete) ``expected`` messages with their attributes."""
    got: list[Any] = []

    def more() -> bool:
        response = sqs.receive_message(
            QueueUrl=queue_url, MessageAttributeNames=["All"], MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        for message in response.get("Messages", []):
            got.append(message)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(got) >= expected

    wait_until(more, what=f"{expected} dead-lettered messages")
    return got


class CountingSqs:
    """The SQS seam, recording the send calls the dead-letterer makes and each batch's entry count."""

    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs
        self.calls: list[str] = []
        self.batch_sizes: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sqs, name)

    def send_message_batch(self, **kwargs: Any) -> Any:
        self.calls.append("send_message_batch")
        self.batch_sizes.append(len(kwargs["Entries"]))
        return self.sqs.send_message_batch(**kwargs)

    def send_message(self, **kwargs: Any) -> Any:
        self.calls.append("send_message")
        return self.sqs.send_message(**kwargs)


def test_big_invalid_messages_are_dead_lettered_in_batches_that_fit(
    make_relay: RelayFactory, sqs: Any, sqs_queue_url: str, dlq_url: str
) -> None:
    bodies = big_bodies(10)
    send_each(sqs, sqs_queue_url, bodies)
    seam = CountingSqs(sqs)
    relay = make_relay(sqs_client=seam, dead_letter_queue_url=dlq_url, visibility_timeout=60)
    for _ in range(10):
        messages = receive_all(relay, 1)
        relay.handle_batch(messages)
        if relay.counters.snapshot()["invalid"] >= 10:
            break
    assert relay.counters.snapshot()["dead_lettered"] == 10
    moved = drain(sqs, dlq_url, 10)
    assert sorted(m["Body"] for m in moved) == sorted(bodies)
    assert all(m["MessageAttributes"]["reason"]["StringValue"] for m in moved)
    assert queue_counts(sqs, sqs_queue_url) == (0, 0)
    # Packed under 256 KiB: at most two 120 KiB copies per batch, each copy sent exactly once (no fallback).
    assert all(size <= 2 for size in seam.batch_sizes)
    assert sum(seam.batch_sizes) + seam.calls.count("send_message") == 10


def test_batch_too_long_falls_back_to_one_message_per_call(
    make_relay: RelayFactory, sqs: Any, sqs_queue_url: str, dlq_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pretend our size budget were larger than SQS's, so moto answers BatchRequestTooLong for real.
    monkeypatch.setattr(dead_letter, "MAX_BATCH_BYTES", 64 * 1024 * 1024)
    bodies = big_bodies(10)
    send_each(sqs, sqs_queue_url, bodies)
    seam = CountingSqs(sqs)
    relay = make_relay(sqs_client=seam, dead_letter_queue_url=dlq_url, visibility_timeout=60)
    messages = receive_all(relay, 10)
    result = relay.handle_batch(messages)
    assert len(result.deleted) == len(messages) and not result.left
    assert seam.calls[0] == "send_message_batch"
    assert seam.batch_sizes == [10] and seam.calls.count("send_message") == 10
    moved = drain(sqs, dlq_url, len(messages))
    assert sorted(m["Body"] for m in moved) == sorted(m["Body"] for m in messages)
    assert all(m["MessageAttributes"]["kind"]["StringValue"] for m in moved)


def test_a_message_the_dlq_refuses_is_left_for_the_redrive_policy_without_looping(
    make_relay: RelayFactory, sqs: Any, sqs_queue_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    small_dlq = sqs.create_queue(
        QueueName=f"dlq-small-{uuid.uuid4().hex[:12]}", Attributes={"MaximumMessageSize": "1024"}
    )["QueueUrl"]
    send(sqs, sqs_queue_url, big_bodies(1, size=2000))
    seam = CountingSqs(sqs)
    relay = make_relay(sqs_client=seam, dead_letter_queue_url=small_dlq, visibility_timeout=60)
    with caplog.at_level(logging.WARNING, logger="spreports.relay"):
        result = relay.handle_batch(receive_all(relay, 1))
    assert len(result.left) == 1 and result.deleted == []
    assert seam.calls == ["send_message", "send_message"]  # with attributes, then the bare body; then it stops
    assert queue_counts(sqs, sqs_queue_url) == (0, 1)  # still there, hidden, for the redrive policy to count
    assert queue_counts(sqs, small_dlq) == (0, 0)
    assert relay.counters.snapshot()["dead_lettered"] == 0
    assert any("redrive policy" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


class AttributeSizeSqs(CountingSqs):
    """SQS as AWS counts size: body plus attributes against ``limit`` (moto counts the body only)."""

    def __init__(self, sqs: Any, limit: int) -> None:
        super().__init__(sqs)
        self.limit = limit

    def send_message(self, **kwargs: Any) -> Any:
        size = len(kwargs["MessageBody"].encode())
        for name, value in kwargs.get("MessageAttributes", {}).items():
            size += len(name) + len(value["DataType"]) + len(value["StringValue"])
        if size > self.limit:
            error = {"Error": {"Code": "InvalidParameterValue", "Message": "Message must be shorter"}}
            self.calls.append("send_message")
            raise ClientError(error, "SendMessage")  # type: ignore[arg-type]
        return super().send_message(**kwargs)


def test_a_copy_too_large_with_its_attributes_goes_as_the_bare_body(
    make_relay: RelayFactory, sqs: Any, sqs_queue_url: str, dlq_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = big_bodies(1, size=3000)[0]
    send(sqs, sqs_queue_url, [body])
    seam = AttributeSizeSqs(sqs, limit=3050)
    relay = make_relay(sqs_client=seam, dead_letter_queue_url=dlq_url, visibility_timeout=60)
    with caplog.at_level(logging.WARNING, logger="spreports.relay"):
        result = relay.handle_batch(receive_all(relay, 1))
    assert len(result.deleted) == 1
    assert seam.calls == ["send_message", "send_message"]
    (moved,) = drain(sqs, dlq_url, 1)
    assert moved["Body"] == body and not moved.get("MessageAttributes")
    assert any("without its reason attributes" in r.getMessage() for r in caplog.records)
    assert queue_counts(sqs, sqs_queue_url) == (0, 0)


def send_each(sqs: Any, queue_url: str, bodies: list[str]) -> None:
    """Put big bodies on a queue one call each (a batch of them would itself be too long)."""
    for text in bodies:
        sqs.send_message(QueueUrl=queue_url, MessageBody=text)
