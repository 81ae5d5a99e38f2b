"""The in-flight registry: waits stay listed with their due moment, and only a task not seen is an orphan."""

from __future__ import annotations

import json

import fakeredis

from spreports.documents.claim import CLAIM_PREFIX
from spreports.documents.inflight import INFLIGHT_KEY, MAX_REDRIVE_SECONDS, InFlight
from spreports.task_arguments import DocumentRequest

GRACE = 40.0
REQUEST = DocumentRequest(seller_id="S1", report_document_id="D1", report_type="T")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def registry() -> tuple[InFlight, fakeredis.FakeRedis, Clock]:
    client, clock = fakeredis.FakeRedis(), Clock()
    return InFlight(client, clock=clock), client, clock


def test_a_running_entry_is_an_orphan_once_its_claim_is_gone() -> None:
    inflight, client, _ = registry()
    inflight.add(REQUEST)
    client.set(f"{CLAIM_PREFIX}:S1:D1", "owner")
    assert inflight.orphans(GRACE) == []
    client.delete(f"{CLAIM_PREFIX}:S1:D1")
    [orphan] = inflight.orphans(GRACE)
    assert orphan.request == REQUEST and orphan.due is None


def test_a_waiting_entry_stays_listed_and_is_an_orphan_only_a_grace_after_it_was_due() -> None:
    inflight, _, clock = registry()
    inflight.away(REQUEST, 300.0)  # a quota wait: back in 5 minutes
    clock.now += 300.0 + GRACE
    assert inflight.orphans(GRACE) == []  # due, but it may still be coming back
    clock.now += 1.0
    [orphan] = inflight.orphans(GRACE)
    assert orphan.request == REQUEST and orphan.due is not None


def test_a_waiting_entry_whose_document_is_claimed_is_not_an_orphan() -> None:
    inflight, client, clock = registry()
    inflight.away(REQUEST, 15.0)  # a duplicate waiting for the claim of a long download
    client.set(f"{CLAIM_PREFIX}:S1:D1", "owner")
    clock.now += 3600.0
    assert inflight.orphans(GRACE) == []


def test_stored_or_failed_documents_leave_the_list() -> None:
    inflight, client, _ = registry()
    inflight.away(REQUEST, 10.0)
    inflight.remove(REQUEST)
    assert client.hlen(INFLIGHT_KEY) == 0


def test_a_redriven_entry_is_due_at_once_then_backs_off_and_is_never_lost() -> None:
    inflight, client, clock = registry()
    inflight.away(REQUEST, 0.0)
    clock.now += GRACE + 1
    [orphan] = inflight.orphans(GRACE)
    assert inflight.redriven(orphan, GRACE)
    assert client.hlen(INFLIGHT_KEY) == 1  # still listed until stored
    gaps = []
    for _ in range(12):
        start = clock.now
        while not (orphans := inflight.orphans(GRACE)):
            clock.now += 1.0
        gaps.append(clock.now - start)
        assert inflight.redriven(orphans[0], GRACE)
    assert gaps[0] == GRACE + 1  # the first re-drive lost too: queued again a grace later
    assert gaps == sorted(gaps) and gaps[1] > gaps[0]  # then further and further apart
    assert max(gaps) <= MAX_REDRIVE_SECONDS + GRACE + 1


def test_a_task_listing_the_document_anew_wins_over_the_requeue() -> None:
    inflight, client, clock = registry()
    inflight.away(REQUEST, 0.0)
    clock.now += GRACE + 1
    [orphan] = inflight.orphans(GRACE)
    inflight.add(REQUEST)  # the task came back just now
    assert not inflight.redriven(orphan, GRACE)
    assert not inflight.drop(orphan)
    assert client.hlen(INFLIGHT_KEY) == 1
    [again] = inflight.orphans(GRACE)  # running, no claim (in this test): found with its new value
    assert again.due is None and inflight.drop(again)
    assert client.hlen(INFLIGHT_KEY) == 0


def test_an_entry_of_the_earlier_format_is_a_running_one_and_garbage_is_dropped() -> None:
    inflight, client, _ = registry()
    client.hset(INFLIGHT_KEY, "S1:D1", REQUEST.model_dump_json())
    client.hset(INFLIGHT_KEY, "S1:D2", "not json")
    [orphan] = inflight.orphans(GRACE)
    assert orphan.request == REQUEST and orphan.due is None
    assert client.hkeys(INFLIGHT_KEY) == [b"S1:D1"]


def test_the_requeue_heartbeat() -> None:
    inflight, _, clock = registry()
    assert inflight.last_pass() is None
    inflight.record_pass()
    assert inflight.last_pass() == clock.now


def test_an_entry_redriven_a_thousand_times_and_more_is_still_redriven_an_hour_apart() -> None:
    # Weeks without a consumer: the back-off's power must not overflow and stop every later pass.
    inflight, client, clock = registry()
    inflight.away(REQUEST, 0.0)
    client.hset(INFLIGHT_KEY, "S1:D1", json.dumps({**json.loads(client.hget(INFLIGHT_KEY, "S1:D1")), "redriven": 1100}))
    clock.now += GRACE + 1
    [orphan] = inflight.orphans(GRACE)
    assert orphan.redriven == 1100
    assert inflight.redriven(orphan, GRACE)
    assert json.loads(client.hget(INFLIGHT_KEY, "S1:D1"))["due"] == clock.now + MAX_REDRIVE_SECONDS
