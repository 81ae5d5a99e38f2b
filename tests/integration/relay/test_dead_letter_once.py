"""An invalid message is dead-lettered once, even when SQS hands it to two receivers at the same time.

A standard queue may deliver one message twice within its visibility timeout (moto does so when two
long polls wake together). The receivers claim the message id in Redis, as they do notification ids:
the second receiver leaves a message the first is copying, and deletes one copied before.
"""

from __future__ import annotations

from typing import Any

from tests.integration.relay.conftest import RelayFactory, queue_counts, send


def receive_both(sqs: Any, queue_url: str) -> tuple[list[Any], list[Any]]:
    """The same messages in the hands of two receivers (the second receive after the first's became visible)."""
    first = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=1)
    second = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=1)
    return first["Messages"], second["Messages"]


def test_two_receivers_holding_one_invalid_message_copy_it_once(
    sqs: Any, sqs_queue_url: str, dlq_url: str, make_relay: RelayFactory
) -> None:
    send(sqs, sqs_queue_url, ["not json at all"])
    first, second = receive_both(sqs, sqs_queue_url)
    assert [m["MessageId"] for m in first] == [m["MessageId"] for m in second]
    relay_a = make_relay(dead_letter_queue_url=dlq_url)
    relay_b = make_relay(dead_letter_queue_url=dlq_url)

    # B claims and copies it; A, handling its copy meanwhile, finds it copied and only deletes.
    relay_b.handle_batch(second)
    relay_a.handle_batch(first)
    assert queue_counts(sqs, dlq_url) == (1, 0)
    assert relay_a.counters.snapshot()["dead_lettered"] == 0
    assert relay_b.counters.snapshot()["dead_lettered"] == 1
    assert queue_counts(sqs, sqs_queue_url) == (0, 0)


def test_a_message_another_receiver_is_copying_is_left_to_it(
    sqs: Any, sqs_queue_url: str, dlq_url: str, make_relay: RelayFactory, redis_client: Any
) -> None:
    send(sqs, sqs_queue_url, ["{broken"])
    first, _ = receive_both(sqs, sqs_queue_url)
    message_id = first[0]["MessageId"]
    redis_client.set(f"spreports:relay:message:{message_id}", "claimed", ex=30)  # another receiver at work
    result = make_relay(dead_letter_queue_url=dlq_url).handle_batch(first)
    assert result.left == [message_id] and result.deleted == []
    assert queue_counts(sqs, dlq_url) == (0, 0)
