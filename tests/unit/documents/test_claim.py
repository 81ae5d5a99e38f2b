"""The Redis claim on a document (fakeredis with Lua)."""

from __future__ import annotations

import threading
import time

import fakeredis
import pytest

from spreports.documents import DocumentClaim
from spreports.documents.claim import claim_owner
from spreports.errors import ServiceUnavailable


def test_claim_is_exclusive_and_released_only_by_its_holder() -> None:
    client = fakeredis.FakeRedis()
    first = DocumentClaim(client, "S", "D", owner="run-1", ttl=60)
    duplicate = DocumentClaim(client, "S", "D", owner="run-2", ttl=60)
    other_document = DocumentClaim(client, "S", "D2", owner="run-2", ttl=60)
    assert first.acquire()
    assert not duplicate.acquire()
    assert 0 < duplicate.remaining() <= 60
    assert other_document.acquire()
    duplicate.release()  # not the holder: no effect
    assert not duplicate.acquire()
    first.release()
    assert duplicate.acquire() and duplicate.remaining() > 0


def test_owners_are_unique_per_run_even_for_one_task_id() -> None:
    # Relay duplicates share a task id: two runs of it must not both hold the claim.
    client = fakeredis.FakeRedis()
    a = DocumentClaim(client, "S", "D", owner=claim_owner("notification-1"), ttl=60)
    b = DocumentClaim(client, "S", "D", owner=claim_owner("notification-1"), ttl=60)
    assert a.owner != b.owner and a.owner.startswith("notification-1@")
    assert a.acquire()
    assert not b.acquire()
    assert not a.acquire()  # not re-entrant either: one run takes it once
    b.release()
    assert client.get(a.key) == a.owner.encode()  # the other run's release left ours alone


def test_renew_extends_only_our_own_claim() -> None:
    client = fakeredis.FakeRedis()
    holder = DocumentClaim(client, "S", "D", owner="run-1", ttl=60)
    other = DocumentClaim(client, "S", "D", owner="run-2", ttl=60)
    assert holder.acquire()
    client.expire(holder.key, 5)
    assert holder.renew() and holder.remaining() > 5
    assert not other.renew() and client.get(holder.key) == b"run-1"
    client.delete(holder.key)  # lapsed
    assert not holder.renew()


def test_a_kept_claim_outlives_its_ttl_and_is_released_at_the_end() -> None:
    client = fakeredis.FakeRedis()
    holder = DocumentClaim(client, "S", "D", owner="run-1", ttl=1)  # renewed every ~0.33 s
    waiter = DocumentClaim(client, "S", "D", owner="run-2", ttl=1)
    assert holder.acquire()
    renewed = threading.Event()
    original = holder.renew

    def counting_renew() -> bool:
        result = original()
        renewed.set()
        return result

    holder.renew = counting_renew  # type: ignore[method-assign]
    with holder.kept():
        assert renewed.wait(timeout=30)
        # Well past the TTL (polling, not one fixed sleep): the heartbeat kept it.
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            assert not waiter.acquire()
            time.sleep(0.1)
    assert client.get(holder.key) is None  # released on exit
    assert waiter.acquire()


def test_a_dead_holders_claim_lapses_within_its_ttl() -> None:
    client = fakeredis.FakeRedis()
    dead = DocumentClaim(client, "S", "D", owner=claim_owner("task-1"), ttl=1)
    redelivered = DocumentClaim(client, "S", "D", owner=claim_owner("task-1"), ttl=1)
    assert dead.acquire()  # and never renewed: its worker died
    assert not redelivered.acquire()
    deadline = time.monotonic() + 30
    while not redelivered.acquire():
        assert time.monotonic() < deadline, "the dead holder's claim never lapsed"
        time.sleep(0.1)


def test_redis_down_is_transient_for_acquire_and_renew_and_harmless_for_release() -> None:
    # fakeredis's server "disconnected": every command raises redis.ConnectionError, as redis-py does
    # when nothing answers (tests/integration/documents/test_claim_redis_down.py: the same against a real socket).
    server = fakeredis.FakeServer()
    server.connected = False
    client = fakeredis.FakeRedis(server=server)
    claim = DocumentClaim(client, "S", "D", owner="run-1", ttl=60)
    with pytest.raises(ServiceUnavailable, match="Redis does not answer"):
        claim.acquire()
    with pytest.raises(ServiceUnavailable, match="Redis does not answer"):
        claim.renew()
    claim.release()
    assert claim.remaining() == 0
