"""The Redis claim on a document (fakeredis with Lua)."""

from __future__ import annotations

import fakeredis

from spreports.documents import DocumentClaim


def test_claim_is_exclusive_reentrant_for_its_owner_and_released_only_by_it() -> None:
    client = fakeredis.FakeRedis()
    first = DocumentClaim(client, "S", "D", owner="task-1", ttl=60)
    duplicate = DocumentClaim(client, "S", "D", owner="task-2", ttl=60)
    redelivered = DocumentClaim(client, "S", "D", owner="task-1", ttl=60)
    other_document = DocumentClaim(client, "S", "D2", owner="task-2", ttl=60)
    assert first.acquire()
    assert not duplicate.acquire()
    assert 0 < duplicate.remaining() <= 60
    assert redelivered.acquire()
    assert other_document.acquire()
    duplicate.release()  # not the holder: no effect
    assert not duplicate.acquire()
    first.release()
    assert duplicate.acquire() and duplicate.remaining() > 0


def test_redis_down_is_transient_for_acquire_and_harmless_for_release() -> None:
    import pytest
    import redis

    from spreports.errors import ServiceUnavailable

    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)  # nothing listens there
    claim = DocumentClaim(client, "S", "D", owner="task-1", ttl=60)
    with pytest.raises(ServiceUnavailable, match="Redis is unavailable"):
        claim.acquire()
    claim.release()
    assert claim.remaining() == 0
