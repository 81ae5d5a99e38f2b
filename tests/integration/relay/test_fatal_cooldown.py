"""A FATAL notification starts its type's cooldown in the relay, with or without a document."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from spreports.reports.cooldowns import cooldown_key, cooldown_until
from tests.integration.relay.conftest import Recorder, RelayFactory, send
from tests.unit.relay.messages import body, notification

SELLER = "A3TH9S8BH6GOGM"
DAILY_FBA = "GET_FBA_INVENTORY_PLANNING_DATA"


def relay_all(relay: Any, expected: int) -> None:
    handled = 0
    for _ in range(10):
        messages = relay.receive()
        if messages:
            handled += len(relay.handle_batch(messages).deleted)
        if handled >= expected:
            return
    raise AssertionError(f"{handled} of {expected} messages handled")


def test_a_fatal_without_a_document_starts_the_types_cooldown_once(
    make_relay: RelayFactory, recorder: Recorder, sqs: Any, sqs_queue_url: str, redis_client: redis.Redis
) -> None:
    fatal = notification(status="FATAL", document_id=None, report_type=DAILY_FBA, report_id="50000000001")
    relay = make_relay()
    before = datetime.now(UTC)
    send(sqs, sqs_queue_url, [body(fatal)])
    relay_all(relay, 1)
    after = datetime.now(UTC)
    assert recorder.published == []  # no document: nothing to retrieve
    until = cooldown_until(redis_client, SELLER, DAILY_FBA)
    # An FBA daily type: Amazon's four hours, not the default 30 minutes.
    assert until is not None and before + timedelta(hours=4) - timedelta(seconds=1) <= until <= after + timedelta(
        hours=4
    )
    stored = redis_client.get(cooldown_key(SELLER, DAILY_FBA, None))
    # The same report notified again (another notificationId, later): its cooldown is not started anew.
    send(
        sqs,
        sqs_queue_url,
        [body({**fatal, "notificationMetadata": {**fatal["notificationMetadata"], "notificationId": "again"}})],
    )
    relay_all(relay, 1)
    assert redis_client.get(cooldown_key(SELLER, DAILY_FBA, None)) == stored


def test_a_fatal_with_a_document_starts_the_cooldown_before_its_retrieval(
    make_relay: RelayFactory, recorder: Recorder, sqs: Any, sqs_queue_url: str, redis_client: redis.Redis
) -> None:
    send(sqs, sqs_queue_url, [body(notification(status="FATAL", report_type=DAILY_FBA))])
    relay_all(make_relay(), 1)
    assert [r.processing_status for r in recorder.published] == ["FATAL"]  # its error document is retrieved
    until = cooldown_until(redis_client, SELLER, DAILY_FBA)
    assert until is not None and until > datetime.now(UTC) + timedelta(hours=3)
