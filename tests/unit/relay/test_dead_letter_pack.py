"""Packing dead-letter copies into SendMessageBatch calls that SQS accepts."""

from __future__ import annotations

from typing import Any

from spreports.errors import InvalidNotification
from spreports.workers.relay.dead_letter import (
    MAX_BATCH_BYTES,
    MAX_BATCH_ENTRIES,
    MAX_REASON_CHARS,
    DeadLetterCopy,
    pack,
)


def copy(index: int, size: int, reason: str = "not JSON") -> DeadLetterCopy:
    message: Any = {"MessageId": f"m-{index}", "Body": "x" * size, "Attributes": {"ApproximateReceiveCount": "3"}}
    return DeadLetterCopy.of(message, InvalidNotification(reason, kind="not-json"))


def test_small_copies_go_ten_per_batch_in_order() -> None:
    copies = [copy(i, 100) for i in range(23)]
    batches = pack(copies)
    assert [len(b) for b in batches] == [10, 10, 3]
    assert [c.message_id for b in batches for c in b] == [c.message_id for c in copies]
    assert MAX_BATCH_ENTRIES == 10


def test_big_copies_are_split_by_size() -> None:
    copies = [copy(i, 100 * 1024) for i in range(5)]
    batches = pack(copies)
    assert [len(b) for b in batches] == [2, 2, 1]
    assert all(sum(c.size() for c in b) <= MAX_BATCH_BYTES for b in batches)


def test_a_copy_over_the_limit_travels_alone() -> None:
    batches = pack([copy(0, 10), copy(1, MAX_BATCH_BYTES + 1), copy(2, 10)])
    assert [[c.message_id for c in b] for b in batches] == [["m-0"], ["m-1"], ["m-2"]]


def test_size_counts_body_and_attributes_and_the_reason_is_bounded() -> None:
    long_reason = copy(0, 50, reason="r" * 5000)
    assert len(long_reason.attributes["reason"]["StringValue"]) == MAX_REASON_CHARS
    plain = copy(0, 50)
    assert plain.size() > 50
    assert copy(0, 51).size() == plain.size() + 1
    assert plain.attributes["sourceMessageId"]["StringValue"] == "m-0"
    assert plain.attributes["approximateReceiveCount"] == {"DataType": "Number", "StringValue": "3"}
