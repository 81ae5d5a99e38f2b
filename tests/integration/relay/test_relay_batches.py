"""The relay loop on moto's SQS and a real Redis: what is published, deleted, dead-lettered or left."""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

import pytest
import redis

from spreports.workers.relay.receiver import DONE_TTL_SECONDS, NOTIFICATION_KEY_PREFIX
from tests.integration.relay.conftest import Recorder, RelayFactory, queue_counts, send, wait_until
from tests.unit.relay.messages import APPLICATION_ID, BAD_BODIES, body, notification


def receive_all(relay: Any, expected: int) -> list[Any]:
    """Receive until ``expected`` messages are in hand (moto may split them over several calls)."""
    messages: list[Any] = []
    wait_until(lambda: bool(messages.extend(relay.receive()) or len(messages) >= expected), what="messages")
    return messages


def test_done_is_published_marked_and_deleted(
    make_relay: RelayFactory, recorder: Recorder, sqs: Any, sqs_queue_url: str, redis_client: redis.Redis
) -> None:
    data = notification(notification_id="n-done")
    send(sqs, sqs_queue_url, [body(data)])
    relay = make_relay()
    result = relay.handle_batch(receive_all(relay, 1))
    assert [r.notification_id for r in recorder.published] == ["n-done"]
    assert (
        recorder.published[0].report_document_id
        == data["payload"]["reportProcessingFinishedNotification"]["reportDocumentId"]
    )
    assert len(result.deleted) == 1 and not result.left
    assert redis_client.get(NOTIFICATION_KEY_PREFIX + "n-done") == b"done"
    # Marked for longer than SQS can keep a message (14 days).
    assert redis_client.ttl(NOTIFICATION_KEY_PREFIX + "n-done") > 14 * 24 * 3600
    assert DONE_TTL_SECONDS > 14 * 24 * 3600
    assert queue_counts(sqs, sqs_queue_url) == (0, 0)
    assert relay.counters.snapshot()["relayed"] == 1


def test_the_same_notification_ten_times_gives_one_task(
    make_relay: RelayFactory, recorder: Recorder, sqs: Any, sqs_queue_url: str, running: Any
) -> None:
    same = body(notification(notification_id="n-ten"))
    send(sqs, sqs_queue_url, [same] * 10)
    # No redelivery while a stalled receiver holds a message: the duplicate counts stay exact.
    relay = make_relay(visibility_timeout=30)
    running(relay)
    wait_until(lambda: relay.counters.snapshot()["duplicates"] == 9, what="nine duplicates")
    wait_until(lambda: queue_counts(sqs, sqs_queue_url) == (0, 0), what="an empty queue")
    assert recorder.ids() == ["n-ten"]
    # A later redelivery (e.g. days after) is still recognised.
    send(sqs, sqs_queue_url, [same])
    wait_until(lambda: relay.counters.snapshot()["duplicates"] == 10, what="the late duplicate")
    assert recorder.ids() == ["n-ten"]


@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
def test_each_bad_kind_goes_to_the_dead_letter_queue_with_its_reason(
    make_relay: RelayFactory, recorder: Recorder, sqs: Any, sqs_queue_url: str, dlq_url: str, kind: str
) -> None:
    send(sqs, sqs_queue_url, [BAD_BODIES[kind]])
    relay = make_relay(dead_letter_queue_url=dlq_url, application_id=APPLICATION_ID)
    result = relay.handle_batch(receive_all(relay, 1))
    assert len(result.deleted) == 1
    moved = sqs.receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
    assert len(moved) == 1
    assert moved[0]["Body"] == BAD_BODIES[kind]
    attributes = moved[0]["MessageAttributes"]
    assert attributes["kind"]["StringValue"] == kind
    assert attributes["reason"]["StringValue"]
    assert attributes["sourceMessageId"]["StringValue"] == result.deleted[0]
    assert recorder.published == []
    assert queue_counts(sqs, sqs_queue_url) == (0, 0)
    counts = relay.counters.snapshot()
    assert (counts["invalid"], counts["dead_lettered"]) == (1, 1)


def test_without_a_dead_letter_queue_bad_messages_are_left_and_do_not_spin(
    make_relay: RelayFactory, recorder: Recorder, sqs: Any, sqs_queue_url: str
) -> None:
    bad = [BAD_BODIES[kind] for kind in sorted(BAD_BODIES)]
    good = body(notification())
    send(sqs, sqs_queue_url, [*bad, good])
    # A visibility timeout far longer than receive + handle take on a loaded machine, and no long poll.
    relay = make_relay(application_id=APPLICATION_ID, visibility_timeout=15, wait_time_seconds=0)
    messages = receive_all(relay, 5)
    result = relay.handle_batch(messages)
    assert len(result.left) == 4 and len(result.deleted) == 1
    assert len(recorder.published) == 1
    # Hidden for the visibility timeout: an immediate receive gets nothing (no spinning on them).
    assert relay.receive() == []
    # Then they come back for the queue's redrive policy to count (expire their timeout now, not in 15 s).
    left = [m for m in messages if m["MessageId"] in result.left]
    entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(left)]
    assert not sqs.change_message_visibility_batch(QueueUrl=sqs_queue_url, Entries=entries).get("Failed")
    again = receive_all(relay, 4)
    assert sorted(m["MessageId"] for m in again) == sorted(result.left)
    assert all(int(m["Attributes"]["ApproximateReceiveCount"]) == 2 for m in again)
    assert relay.counters.snapshot()["invalid"] == 4


def test_cancelled_fatal_and_skipped(
    make_relay: RelayFactory, recorder: Recorder, sqs: Any, sqs_queue_url: str
) -> None:
    bodies = [
        body(notification(status="CANCELLED", document_id=None)),
        body(notification(status="FATAL", notification_id="n-fatal")),
        body(notification(status="FATAL", document_id=None)),
        body(notification(report_type="GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE")),
        body(notification(report_type="GET_MERCHANT_LISTINGS_ALL_DATA", notification_id="n-wanted")),
    ]
    send(sqs, sqs_queue_url, bodies)
    relay = make_relay(report_types=frozenset({"GET_MERCHANT_LISTINGS_ALL_DATA"}))
    result = relay.handle_batch(receive_all(relay, 5))
    assert len(result.deleted) == 5
    assert {(r.notification_id, r.processing_status) for r in recorder.published} == {
        ("n-fatal", "FATAL"),
        ("n-wanted", "DONE"),
    }
    counts = relay.counters.snapshot()
    assert (counts["cancelled"], counts["no_document"], counts["skipped"], counts["relayed"]) == (1, 1, 1, 2)
    assert queue_counts(sqs, sqs_queue_url) == (0, 0)


def test_a_failed_publish_deletes_nothing_and_is_retried(
    make_relay: RelayFactory, recorder: Recorder, sqs: Any, sqs_queue_url: str, redis_client: redis.Redis, running: Any
) -> None:
    send(sqs, sqs_queue_url, [body(notification(notification_id=f"n-{i}")) for i in range(3)])
    recorder.failing = True
    relay = make_relay()
    running(relay)
    wait_until(lambda: queue_counts(sqs, sqs_queue_url)[1] == 3, what="messages in flight")
    # Claims are released and nothing is marked: the retry is not mistaken for a duplicate.
    wait_until(lambda: not redis_client.keys(NOTIFICATION_KEY_PREFIX + "*"), what="released claims")
    recorder.failing = False
    wait_until(lambda: queue_counts(sqs, sqs_queue_url) == (0, 0), what="an empty queue")
    assert sorted(recorder.ids()) == ["n-0", "n-1", "n-2"]


class FailingDeletes:
    """The SQS seam with one delete entry reported as Failed per batch (as SQS does for a stale handle)."""

    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sqs, name)

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        if self.failures == 0:
            self.failures += 1
            keep, fail = Entries[1:], Entries[0]
            response = self.sqs.delete_message_batch(QueueUrl=QueueUrl, Entries=keep) if keep else {"Successful": []}
            response["Failed"] = [{"Id": fail["Id"], "Code": "ReceiptHandleIsInvalid", "SenderFault": True}]
            return dict(response)
        return dict(self.sqs.delete_message_batch(QueueUrl=QueueUrl, Entries=Entries))


def test_a_failed_delete_entry_reappears_and_is_absorbed(
    make_relay: RelayFactory, recorder: Recorder, sqs: Any, sqs_queue_url: str, running: Any, caplog: Any
) -> None:
    send(sqs, sqs_queue_url, [body(notification(notification_id=f"n-{i}")) for i in range(3)])
    seam = FailingDeletes(sqs)
    relay = make_relay(sqs_client=seam)
    with caplog.at_level(logging.WARNING, logger="spreports.relay"):
        running(relay)
        # At least one: a stalled receiver may see the message come back more than once.
        wait_until(lambda: relay.counters.snapshot()["duplicates"] >= 1, what="the redelivered message")
        wait_until(lambda: queue_counts(sqs, sqs_queue_url) == (0, 0), what="an empty queue")
    assert sorted(recorder.ids()) == ["n-0", "n-1", "n-2"]
    assert any("ReceiptHandleIsInvalid" in r.getMessage() for r in caplog.records)


def test_competing_relays_publish_each_notification_once(
    make_relay: RelayFactory, recorder: Recorder, sqs: Any, sqs_queue_url: str, running: Any
) -> None:
    ids = [f"n-{i}" for i in range(40)]
    # Every notification twice, as SQS's at-least-once delivery may do.
    send(sqs, sqs_queue_url, [body(notification(notification_id=i)) for i in ids * 2])
    # A visibility timeout long enough that no message reappears while a loaded machine still holds it.
    relays = [make_relay(visibility_timeout=30) for _ in range(3)]
    for relay in relays:
        running(relay)
    wait_until(lambda: queue_counts(sqs, sqs_queue_url) == (0, 0), what="an empty queue", timeout=120)
    assert Counter(recorder.ids()) == Counter(ids)
    # Every second copy was recognised. SQS delivers at least once: under load a copy may come a third
    # time (moto hands a message to two concurrent receivers now and then), and is counted too.
    assert sum(r.counters.snapshot()["duplicates"] for r in relays) >= 40


def test_logs_and_dead_letter_reasons_never_carry_the_body(
    make_relay: RelayFactory, sqs: Any, sqs_queue_url: str, dlq_url: str, caplog: Any
) -> None:
    secret = "Atza|very-secret-token https://bucket.s3.amazonaws.com/doc?X-Amz-Signature=deadbeef"
    data = notification()
    data["payload"]["reportProcessingFinishedNotification"]["reportDocumentId"] = secret
    bodies = [json.dumps(data), f"not json {secret}", json.dumps({"notificationType": secret})]
    send(sqs, sqs_queue_url, bodies)
    relay = make_relay(dead_letter_queue_url=dlq_url)
    with caplog.at_level(logging.DEBUG, logger="spreports"):
        relay.handle_batch(receive_all(relay, 3))
    # Our own log lines (botocore's DEBUG lines show request bodies by design; they are off in the relay).
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("spreports"))
    assert "invalid message" in text
    assert "secret" not in text and "Signature" not in text
    moved = sqs.receive_message(
        QueueUrl=dlq_url, MessageAttributeNames=["All"], MaxNumberOfMessages=10, WaitTimeSeconds=1
    )
    reasons = [m["MessageAttributes"]["reason"]["StringValue"] for m in moved["Messages"]]
    assert reasons and not any("secret" in r or "Signature" in r for r in reasons)
